//! A digest rendered once per campaign and set of topics with its personal
//! parts left open, so that each reader's copy only writes those in (issue
//! 5: "per-reader rendering touches only the personal parts").
//!
//! The shared render gets unguessable markers for the personal values and
//! is cut at them. Whether a template uses those values plainly is not
//! assumed but checked: a shape is used only if filling it gave exactly the
//! full render for the first reader it was made for.

use std::{fmt::Write, sync::LazyLock};

use minijinja::HtmlEscape;
use rand::RngCore;

use crate::mail::RenderedEmail;

/// A reader's own values in their digest.
pub struct Personal<'a> {
    pub name: Option<&'a str>,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
}

impl Personal<'_> {
    /// In the order of [`MARKERS`], which [`Piece::Personal`] indexes.
    fn values(&self) -> [&str; 3] {
        [
            self.name.unwrap_or_default(),
            self.unsubscribe_url,
            self.preferences_url,
        ]
    }
}

/// What stands in for each personal value in a shared render: a control
/// character and a per-process random number, so no article can hold one.
static MARKERS: LazyLock<[String; 3]> = LazyLock::new(|| {
    let nonce = rand::rng().next_u64();
    [0, 1, 2].map(|i| format!("\u{1}{nonce:016x}.{i}\u{1}"))
});

/// The values to render a shape with; a reader with a name and one without
/// may be shown different text, so each gets shapes of their own.
pub fn markers(with_name: bool) -> Personal<'static> {
    Personal {
        name: with_name.then_some(MARKERS[0].as_str()),
        unsubscribe_url: &MARKERS[1],
        preferences_url: &MARKERS[2],
    }
}

enum Piece {
    Shared(String),
    Personal(usize),
}

/// A digest with its personal parts open.
pub struct Shape {
    subject: String,
    text: Vec<Piece>,
    html: Vec<Piece>,
    template_version: String,
}

impl Shape {
    /// Cuts a render made with [`markers`]; `None` if the subject holds a
    /// personal value (a header is not cut; such digests render in full).
    pub fn cut(rendered: RenderedEmail) -> Option<Self> {
        if MARKERS
            .iter()
            .any(|m| rendered.subject.contains(m.as_str()))
        {
            return None;
        }
        Some(Self {
            subject: rendered.subject,
            text: pieces(&rendered.text),
            html: pieces(&rendered.html),
            template_version: rendered.template_version,
        })
    }

    /// The digest of one reader: the text part takes the values as they
    /// are, the HTML part escaped as the template engine escapes them.
    pub fn fill(&self, personal: &Personal<'_>) -> RenderedEmail {
        let values = personal.values();
        let text = join(&self.text, |out, i| out.push_str(values[i]));
        let html = join(&self.html, |out, i| {
            let _ = write!(out, "{}", HtmlEscape(values[i]));
        });
        RenderedEmail {
            subject: self.subject.clone(),
            text,
            html,
            template_version: self.template_version.clone(),
        }
    }
}

fn pieces(mut rendered: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    loop {
        let next = MARKERS
            .iter()
            .enumerate()
            .filter_map(|(i, marker)| rendered.find(marker.as_str()).map(|at| (at, i)))
            .min();
        let Some((at, i)) = next else {
            pieces.push(Piece::Shared(rendered.to_owned()));
            return pieces;
        };
        pieces.push(Piece::Shared(rendered[..at].to_owned()));
        pieces.push(Piece::Personal(i));
        rendered = &rendered[at + MARKERS[i].len()..];
    }
}

fn join(pieces: &[Piece], mut personal: impl FnMut(&mut String, usize)) -> String {
    let shared: usize = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Shared(text) => text.len(),
            Piece::Personal(_) => 100,
        })
        .sum();
    let mut out = String::with_capacity(shared);
    for piece in pieces {
        match piece {
            Piece::Shared(text) => out.push_str(text),
            Piece::Personal(i) => personal(&mut out, *i),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(subject: &str, text: &str, html: &str) -> RenderedEmail {
        RenderedEmail {
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
            template_version: "v".into(),
        }
    }

    #[test]
    fn a_shape_is_filled_with_each_readers_values_escaped_for_html() {
        let m = markers(true);
        let shape = Shape::cut(rendered(
            "News",
            &format!(
                "Hi {}\nLeave: {}",
                m.name.unwrap_or_default(),
                m.unsubscribe_url
            ),
            &format!(
                "<a href=\"{}\">x</a>{}",
                m.preferences_url, m.unsubscribe_url
            ),
        ))
        .expect("subject has no marker");
        let email = shape.fill(&Personal {
            name: Some("Ann <&>"),
            unsubscribe_url: "https://n.example/u/1",
            preferences_url: "https://n.example/p/1",
        });
        assert_eq!(email.subject, "News");
        assert_eq!(email.text, "Hi Ann <&>\nLeave: https://n.example/u/1");
        assert_eq!(
            email.html,
            "<a href=\"https:&#x2f;&#x2f;n.example&#x2f;p&#x2f;1\">x</a>https:&#x2f;&#x2f;n.example&#x2f;u&#x2f;1"
        );
    }

    #[test]
    fn a_personal_subject_is_not_cut() {
        let m = markers(true);
        let subject = format!("For {}", m.name.unwrap_or_default());
        assert!(Shape::cut(rendered(&subject, "t", "h")).is_none());
    }
}
