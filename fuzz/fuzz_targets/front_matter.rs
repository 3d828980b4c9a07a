//! Article files: TOML front matter and Markdown, as `article import` and
//! the API take them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(article) = broadsheet::articles::parse_markdown_file(input) {
        let _ = article.record(chrono::Utc::now());
    }
});
