//! Tokens in links (confirmation, sign-in, password) and signed reader
//! links (unsubscribe, preferences), as paths carry them.
#![no_main]

use broadsheet::domain::{LinkPurpose, LinkSigner, Token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Some(token) = Token::parse(input) {
        let _ = token.hash();
    }
    let signer = LinkSigner::new(b"fuzzing key");
    for purpose in [LinkPurpose::Unsubscribe, LinkPurpose::Preferences] {
        let _ = signer.verify(purpose, input);
        // Whatever id a link is made for, the link verifies.
        if let Some(link) = signer.token(purpose, input) {
            assert!(signer.verify(purpose, &link).is_some(), "{link}");
        }
    }
});
