//! The optional name a reader gives at signup.

/// Why a name was refused; the message is shown to the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Your name can be at most 100 characters.")]
    TooLong,
    #[error("Your name contains characters we can't accept.")]
    ControlCharacters,
}

/// A display name: at most 100 characters, no control characters (E-17: names
/// may reach headers, so CR/LF/NUL are refused rather than stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberName(String);

impl SubscriberName {
    /// `Ok(None)` for a blank field.
    pub fn parse_optional(input: &str) -> Result<Option<Self>, NameError> {
        let name = input.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacters);
        }
        if name.chars().count() > 100 {
            return Err(NameError::TooLong);
        }
        Ok(Some(Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_no_name_and_control_characters_are_refused() {
        assert_eq!(SubscriberName::parse_optional("  "), Ok(None));
        assert_eq!(
            SubscriberName::parse_optional("Ada\r\nBcc: x"),
            Err(NameError::ControlCharacters)
        );
        assert_eq!(
            SubscriberName::parse_optional(&"x".repeat(101)),
            Err(NameError::TooLong)
        );
        assert_eq!(
            SubscriberName::parse_optional(" Ada ").map(|n| n.map(|n| n.0)),
            Ok(Some("Ada".into()))
        );
    }
}
