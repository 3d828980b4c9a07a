//! The fuzzers' corpora (and any crash they found, under `fuzz/artifacts`)
//! replayed through the same parsers on every test run, so what once broke
//! one stays fixed without libFuzzer. The fuzz targets themselves are in
//! `fuzz/` (RELIABILITY.md).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::Path;

use broadsheet::domain::{EmailAddress, LinkPurpose, LinkSigner, Token, mask_addresses};

/// Every input kept for `target`: its corpus and its crash reproducers.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for folder in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries {
            inputs.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    inputs
}

fn text(input: &[u8]) -> Option<&str> {
    std::str::from_utf8(input).ok()
}

#[test]
fn the_address_corpus_parses_without_panicking() {
    let inputs = inputs("address");
    assert!(!inputs.is_empty(), "fuzz/corpus/address is kept");
    let mut valid = 0;
    for input in inputs.iter().filter_map(|i| text(i)) {
        if let Ok(address) = EmailAddress::parse(input) {
            let again = EmailAddress::parse(address.as_entered()).unwrap();
            assert_eq!(again.canonical(), address.canonical());
            valid += 1;
        }
        let _ = mask_addresses(input);
    }
    assert!(valid > 0, "the corpus reaches valid addresses too");
}

#[test]
fn the_front_matter_corpus_parses_without_panicking() {
    let inputs = inputs("front_matter");
    assert!(!inputs.is_empty(), "fuzz/corpus/front_matter is kept");
    for input in inputs.iter().filter_map(|i| text(i)) {
        let _ = broadsheet::articles::parse_markdown_file(input);
    }
}

#[test]
fn the_csv_corpus_parses_without_panicking() {
    let inputs = inputs("csv_rows");
    assert!(!inputs.is_empty(), "fuzz/corpus/csv_rows is kept");
    for input in &inputs {
        let _ = broadsheet::import::check(input.as_slice());
    }
}

#[test]
fn the_feed_corpus_parses_without_panicking() {
    let inputs = inputs("feed");
    assert!(!inputs.is_empty(), "fuzz/corpus/feed is kept");
    let articles: usize = inputs
        .iter()
        .filter_map(|input| broadsheet::feeds::articles_in(input, &[], chrono::Utc::now()).ok())
        .map(|(_, articles)| articles.len())
        .sum();
    assert!(articles > 0, "the corpus reaches articles too");
}

#[test]
fn the_token_corpus_parses_without_panicking() {
    let inputs = inputs("token");
    assert!(!inputs.is_empty(), "fuzz/corpus/token is kept");
    let signer = LinkSigner::new(b"fuzzing key");
    for input in inputs.iter().filter_map(|i| text(i)) {
        let _ = Token::parse(input);
        for purpose in [LinkPurpose::Unsubscribe, LinkPurpose::Preferences] {
            let _ = signer.verify(purpose, input);
        }
    }
}
