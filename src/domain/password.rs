//! A password a reader chose: checked against the rules of A-05, never printed.

use std::fmt;

/// Why a password was refused; the message is shown to the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Your password needs at least 8 characters.")]
    TooShort,
    #[error("Your password can be at most 256 characters.")]
    TooLong,
    #[error(
        "That password is one of the most common ones, so it is easy to guess. Please choose another."
    )]
    Common,
}

/// A new password: 8 to 256 characters (A-05 asks that at least 64 be
/// accepted), no composition rules, not on the list of common passwords.
#[derive(Clone)]
pub struct NewPassword(String);

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 256;

/// Frequently leaked passwords of 8 or more characters, one per line, lower case.
const COMMON: &str = include_str!("common_passwords.txt");

impl NewPassword {
    pub fn parse(input: &str) -> Result<Self, PasswordError> {
        let chars = input.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let lowered = input.to_lowercase();
        if COMMON.lines().any(|common| common == lowered) {
            return Err(PasswordError::Common);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_commonness_are_the_only_rules() {
        assert_eq!(
            NewPassword::parse("short").err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            NewPassword::parse(&"x".repeat(257)).err(),
            Some(PasswordError::TooLong)
        );
        assert_eq!(
            NewPassword::parse("Password1").err(),
            Some(PasswordError::Common)
        );
        assert_eq!(
            NewPassword::parse("QWERTYUIOP").err(),
            Some(PasswordError::Common)
        );
        assert!(NewPassword::parse("correct horse battery staple").is_ok());
        assert!(NewPassword::parse(&"é".repeat(64)).is_ok());
        assert!(
            !format!("{:?}", NewPassword::parse("a secret phrase").unwrap()).contains("secret")
        );
    }
}
