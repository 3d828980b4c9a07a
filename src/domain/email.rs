//! A reader's email address: parsed once at the edge, then trusted (S-01, D-14).

use std::fmt;

/// Why an address was refused; the message is shown to the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Please enter your email address.")]
    Empty,
    #[error("That email address is too long.")]
    TooLong,
    #[error("That doesn't look like an email address. Please check it.")]
    Invalid,
}

/// An address as typed (for display) and its canonical form, which carries the
/// uniqueness constraint: trimmed, domain lower-cased and IDNA-encoded (D-14).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress {
    original: String,
    canonical: String,
}

/// RFC 5321 §4.5.3.1: local part ≤ 64 octets, path ≤ 256 → address ≤ 254.
const MAX_LOCAL: usize = 64;
const MAX_TOTAL: usize = 254;

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let original = input.trim();
        if original.is_empty() {
            return Err(EmailError::Empty);
        }
        if original.len() > MAX_TOTAL * 4 {
            return Err(EmailError::TooLong);
        }
        if original
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(EmailError::Invalid);
        }
        let (local, domain) = original.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let domain = idna::domain_to_ascii(domain).map_err(|_| EmailError::Invalid)?;
        if local.len() > MAX_LOCAL {
            return Err(EmailError::TooLong);
        }
        let canonical = format!("{local}@{domain}");
        if canonical.len() > MAX_TOTAL {
            return Err(EmailError::TooLong);
        }
        // A maintained parser for the syntax (S-01); we insist on a dotted domain,
        // as no reader's mailbox lives on a bare host name.
        if !email_address::EmailAddress::is_valid(&canonical)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || local.starts_with('"')
        {
            return Err(EmailError::Invalid);
        }
        Ok(Self {
            original: original.to_owned(),
            canonical,
        })
    }

    /// The address as the reader typed it (trimmed).
    pub fn as_entered(&self) -> &str {
        &self.original
    }

    /// The form that identifies the reader and that mail is sent to.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_email(&self.canonical))
    }
}

/// `j***@example.com`: addresses in logs are masked (D-17).
pub fn mask_email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Masks every address in a free text, such as a mail server's reply, which
/// often repeats the recipient (D-17).
pub fn mask_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask_email(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')' | ',' | ';') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_lowercases_and_encodes_the_domain_only() {
        let address = EmailAddress::parse("  Ada.Lovelace@Exämple.ORG ").expect("valid");
        assert_eq!(address.as_entered(), "Ada.Lovelace@Exämple.ORG");
        assert_eq!(address.canonical(), "Ada.Lovelace@xn--exmple-cua.org");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@example.com\r\nBcc: x@y.z",
            "a\0@example.com",
            "a@.example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn enforces_rfc_5321_lengths() {
        let local = "a".repeat(65);
        assert_eq!(
            EmailAddress::parse(&format!("{local}@example.com")),
            Err(EmailError::TooLong)
        );
        let long_domain = format!("{}.com", "d".repeat(60)).repeat(4);
        assert_eq!(
            EmailAddress::parse(&format!("a@{long_domain}")),
            Err(EmailError::TooLong)
        );
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
    }

    #[test]
    fn addresses_in_server_replies_are_masked() {
        assert_eq!(
            mask_addresses("550 5.1.1 <reader@example.com>: Recipient address rejected"),
            "550 5.1.1 <r***@example.com>: Recipient address rejected"
        );
    }

    #[test]
    fn masking_keeps_only_the_first_letter_and_the_domain() {
        assert_eq!(mask_email("reader@example.com"), "r***@example.com");
    }
}
