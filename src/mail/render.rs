//! Email templates: `<name>.txt` (first line `Subject: …`, a blank line, then
//! the text body) and `<name>.html` (the HTML body, usually extending
//! `layout.html`). Loaded once at start-up; a `mail.templates_dir` file with
//! the same name replaces the embedded one.

use std::{collections::HashMap, path::Path};

use anyhow::{Context, bail};
use minijinja::Environment;

use crate::{assets::EMAIL_TEMPLATES, domain::content_hash};

/// A message's parts, ready for lettre.
#[derive(Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Hash of the template sources used, kept as evidence (D-13).
    pub template_version: String,
}

pub struct EmailTemplates {
    env: Environment<'static>,
    versions: HashMap<String, String>,
}

impl EmailTemplates {
    /// Loads the embedded templates, overridden by files in `override_dir`.
    pub fn load(override_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut sources = HashMap::new();
        for (name, embedded) in EMAIL_TEMPLATES {
            let source = match override_dir.map(|dir| dir.join(name)) {
                Some(path) if path.is_file() => std::fs::read_to_string(&path)
                    .with_context(|| format!("while reading {}", path.display()))?,
                _ => (*embedded).to_owned(),
            };
            env.add_template_owned(name.to_string(), source.clone())
                .with_context(|| format!("email template {name} does not compile"))?;
            sources.insert(name.to_string(), source);
        }
        let layout = sources.get("layout.html").cloned().unwrap_or_default();
        let mut versions = HashMap::new();
        for name in sources.keys().filter_map(|n| n.strip_suffix(".txt")) {
            let html = sources.get(&format!("{name}.html")).with_context(|| {
                format!("email template {name}.txt has no {name}.html beside it")
            })?;
            let version = content_hash(&format!(
                "{}\0{html}\0{layout}",
                sources[&format!("{name}.txt")]
            ));
            versions.insert(name.to_owned(), version[..16].to_owned());
        }
        Ok(Self { env, versions })
    }

    /// Renders the text and HTML parts of template `name`.
    pub fn render(&self, name: &str, context: &serde_json::Value) -> anyhow::Result<RenderedEmail> {
        let version = self
            .versions
            .get(name)
            .with_context(|| format!("no email template named {name}"))?;
        let text = self
            .env
            .get_template(&format!("{name}.txt"))?
            .render(context)
            .with_context(|| format!("while rendering {name}.txt"))?;
        let html = self
            .env
            .get_template(&format!("{name}.html"))?
            .render(context)
            .with_context(|| format!("while rendering {name}.html"))?;
        let (subject, body) = split_subject(&text).with_context(|| {
            format!("{name}.txt must begin with a `Subject:` line and a blank line")
        })?;
        Ok(RenderedEmail {
            subject,
            text: body,
            html,
            template_version: version.clone(),
        })
    }
}

/// Splits `Subject: …\n\nbody`. A subject holding CR or NUL is refused, not
/// stripped (E-17).
fn split_subject(text: &str) -> anyhow::Result<(String, String)> {
    let (head, body) = text
        .split_once("\n\n")
        .context("no blank line after the subject")?;
    let subject = head
        .strip_prefix("Subject:")
        .context("no Subject: line")?
        .trim();
    if subject.is_empty() || subject.contains(['\r', '\n', '\0']) {
        bail!("the subject is empty or holds control characters");
    }
    Ok((subject.to_owned(), body.trim_start().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_renders_with_its_documented_context() {
        let templates = EmailTemplates::load(None).expect("embedded templates compile");
        let context = serde_json::json!({
            "base_url": "https://news.example",
            "link_url": "https://news.example/confirm/abc",
            "expires_hours": 48,
            "username": "reader@example.com",
            "expires_days": 7,
            "login_url": "https://news.example/login",
            "expires_minutes": 10,
            "site_name": "Lord's Press",
            "date": "27 November 2026",
            "count": 1,
            "subject": "",
            "groups": [{"category": "city", "articles": [{"title": "T", "teaser": "t", "author": "a", "url": "u"}]}],
            "unsubscribe_url": "https://news.example/unsubscribe/x",
            "preferences_url": "https://news.example/preferences/x",
        });
        for name in [
            "confirm",
            "credentials",
            "already_subscribed",
            "password_set",
            "password_reset",
            "sign_in_link",
            "digest",
        ] {
            let email = templates.render(name, &context).expect(name);
            assert!(
                !email.subject.is_empty() && !email.text.is_empty(),
                "{name}"
            );
            assert!(email.html.contains("<html"), "{name}");
        }
    }

    #[test]
    fn a_file_in_templates_dir_overrides_the_embedded_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("confirm.txt"),
            "Subject: Bitte bestätigen\n\n{{ link_url }}",
        )
        .expect("write");
        let templates = EmailTemplates::load(Some(dir.path())).expect("load");
        let email = templates
            .render(
                "confirm",
                &serde_json::json!({"link_url": "u", "expires_hours": 1, "base_url": "b"}),
            )
            .expect("render");
        assert_eq!(email.subject, "Bitte bestätigen");
        assert_eq!(email.text, "u");
    }

    #[test]
    fn html_parts_escape_their_data() {
        let templates = EmailTemplates::load(None).expect("load");
        let email = templates
            .render(
                "confirm",
                &serde_json::json!({"link_url": "\"><script>", "expires_hours": 1, "base_url": "b"}),
            )
            .expect("render");
        assert!(!email.html.contains("<script>"));
    }
}
