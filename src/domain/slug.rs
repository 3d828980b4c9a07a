//! The URL name of an article: lower-case ASCII letters, digits and hyphens.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a slug is 1 to 100 lower-case letters, digits and single hyphens, e.g. \"budget-talks-resume\""
)]
pub struct SlugError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

const MAX_LEN: usize = 100;

impl Slug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let valid = !input.is_empty()
            && input.len() <= MAX_LEN
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !input.starts_with('-')
            && !input.ends_with('-')
            && !input.contains("--");
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(SlugError)
        }
    }

    /// Derives a slug from a title: ASCII letters and digits kept, everything
    /// else collapsed to single hyphens.
    pub fn from_title(title: &str) -> Result<Self, SlugError> {
        let mut slug = String::new();
        for c in title.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let mut slug = slug.trim_end_matches('-').to_owned();
        if slug.len() > MAX_LEN {
            slug.truncate(MAX_LEN);
            slug = slug.trim_end_matches('-').to_owned();
        }
        Self::parse(&slug)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_slugs() {
        assert_eq!(
            Slug::from_title("Russia wants … a veto!").unwrap().as_str(),
            "russia-wants-a-veto"
        );
        assert!(Slug::from_title("…").is_err());
    }

    #[test]
    fn only_clean_slugs_parse() {
        for bad in ["", "Upper", "a--b", "-a", "a-", "a/b", "a b", "é"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Slug::parse("budget-2026").is_ok());
    }
}
