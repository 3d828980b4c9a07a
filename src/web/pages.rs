//! Server-rendered pages: minijinja templates embedded from `templates/`,
//! HTML-escaped by default.

use anyhow::Context;
use axum::response::Html;
use minijinja::Environment;
use serde::Serialize;

use super::frame::Frame;
use crate::assets::WEB_TEMPLATES;

pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn load(site_name: &str, cookie_banner_text: &str) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, source) in WEB_TEMPLATES {
            env.add_template(name, source)
                .with_context(|| format!("page template {name} does not compile"))?;
        }
        env.add_global("site_name", site_name.to_owned());
        env.add_global("cookie_banner_text", cookie_banner_text.to_owned());
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        env.add_filter("date", format_date);
        env.add_filter("datetime", format_datetime);
        env.add_filter("counted", |n: i64, word: &str| {
            crate::stats::counted(n, word)
        });
        Ok(Self { env })
    }

    /// Renders page `name` with `context` plus what the frame gives every
    /// page: `csrf`, `signed_in`, `cookie_banner` and `path`.
    pub fn render(
        &self,
        name: &str,
        frame: &Frame,
        context: impl Serialize,
    ) -> anyhow::Result<Html<String>> {
        let context = minijinja::context! {
            csrf => frame.csrf,
            signed_in => frame.reader.is_some(),
            cookie_banner => frame.cookie_choice.is_none(),
            path => frame.path,
            ..minijinja::Value::from_serialize(context)
        };
        self.render_value(name, context)
    }

    /// Renders console page `name` (under `admin/`) with `context` plus
    /// `csrf`, `editor` and `is_admin`; `editor` is `None` on the sign-in pages.
    pub fn render_console(
        &self,
        name: &str,
        csrf: &str,
        editor: Option<&crate::editors::SignedIn>,
        context: impl Serialize,
    ) -> anyhow::Result<Html<String>> {
        let context = minijinja::context! {
            csrf => csrf,
            editor => editor.map(|e| e.email.as_str()),
            is_admin => editor.is_some_and(|e| e.role == crate::editors::Role::Admin),
            ..minijinja::Value::from_serialize(context)
        };
        self.render_value(name, context)
    }

    fn render_value(&self, name: &str, context: minijinja::Value) -> anyhow::Result<Html<String>> {
        let html = self
            .env
            .get_template(name)?
            .render(context)
            .with_context(|| format!("while rendering page {name}"))?;
        Ok(Html(html))
    }
}

/// `{{ published_at|date }}`: Unix milliseconds as "27 November 2026".
fn format_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.format("%-d %B %Y").to_string())
        .unwrap_or_default()
}

/// `{{ at|datetime }}`: Unix milliseconds as "2026-11-27 07:00 UTC".
fn format_datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}
