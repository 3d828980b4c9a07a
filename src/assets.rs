//! Files embedded in the binary at build time (see `build.rs`).

/// `templates/`: web pages.
pub const WEB_TEMPLATES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));
/// `email_templates/`: the defaults that `mail.templates_dir` may override.
pub const EMAIL_TEMPLATES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/email_templates.rs"));
/// `static/`: CSS and the little script the pages need.
pub const STATIC_FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/static.rs"));
