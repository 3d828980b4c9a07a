//! Header-style fields (RFC 5322 §2.2), as message headers, delivery-status
//! groups (RFC 3464 §2.1) and complaint reports (RFC 5965) write them:
//! `Name: value`, the value going on over lines that start with white space.

use chrono::{DateTime, Utc};
use mail_parser::DateTime as MailDate;

/// Fields in their order, values unfolded and trimmed; names compare
/// without case.
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The fields up to the first blank line: a header section.
    pub(super) fn header(text: &str) -> Self {
        let lines: Vec<&str> = text
            .lines()
            .take_while(|line| !line.trim().is_empty())
            .collect();
        Self::from_lines(&lines)
    }

    /// Groups of fields separated by blank lines (a delivery-status body).
    pub(super) fn groups(text: &str) -> Vec<Self> {
        paragraphs(text)
            .iter()
            .map(|lines| Self::from_lines(lines))
            .collect()
    }

    /// The first value of the field `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// Every value of the field `name`, in order.
    pub(super) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Lines that are not fields (an mbox `From ` line, stray text) are
    /// skipped: a name has no white space in it.
    fn from_lines(lines: &[&str]) -> Self {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':')
                && !name.trim().contains(char::is_whitespace)
            {
                fields.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Self(fields)
    }
}

/// The text's paragraphs: runs of lines that are not blank.
pub(super) fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut paragraphs = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        if !line.trim().is_empty() {
            current.push(line);
        } else if !current.is_empty() {
            paragraphs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// The address in a field's value: inside `<…>` when there are brackets,
/// else the first word with an `@`; none when it has no `@` (`<>`, a
/// redacted `<undisclosed>`).
pub(super) fn address_in(value: &str) -> Option<&str> {
    let bracketed = value
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(inside, _)| inside.trim());
    bracketed
        .or_else(|| value.split_whitespace().find(|word| word.contains('@')))
        .filter(|address| address.contains('@'))
}

/// A date as RFC 5322 writes it (`Date:`, `Arrival-Date:`), in UTC.
pub(super) fn date(value: &str) -> Option<DateTime<Utc>> {
    let date = MailDate::parse_rfc822(value).filter(MailDate::is_valid)?;
    DateTime::from_timestamp(date.to_timestamp(), 0)
}
