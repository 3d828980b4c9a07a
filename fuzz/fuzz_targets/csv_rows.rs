//! Subscriber CSV files, as `subscriber import` and the API read them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = broadsheet::import::check(input);
});
