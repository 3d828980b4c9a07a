//! RSS and Atom documents from the feeds editors add.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = broadsheet::feeds::articles_in(input, &["news".to_owned()], chrono::Utc::now());
});
