//! Email addresses as forms, the API and imports take them, and the masking
//! every log line goes through.
#![no_main]

use broadsheet::domain::{EmailAddress, mask_addresses, mask_email};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(address) = EmailAddress::parse(input) {
        // A parsed address parses again to itself.
        let again =
            EmailAddress::parse(address.as_entered()).expect("a parsed address parses again");
        assert_eq!(again.canonical(), address.canonical());
    }
    let _ = mask_email(input);
    let _ = mask_addresses(input);
});
