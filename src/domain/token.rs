//! Secrets sent by email: 256 random bits, shown once, stored only as a hash (D-02, D-03).

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a token may be used for; a token never works for another purpose (D-04).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Confirm,
    /// The welcome link in the credentials email (7 days).
    SetPassword,
    /// A password-reset link (1 hour); a reset voids older resets, not the welcome link.
    ResetPassword,
    /// An emailed sign-in link.
    SignIn,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::SetPassword => "set_password",
            Self::ResetPassword => "reset_password",
            Self::SignIn => "sign_in",
        }
    }
}

const TOKEN_BYTES: usize = 32;

/// The secret itself: only ever put into a link, never logged (`Debug` redacts).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh token from `rand`'s thread CSPRNG (ChaCha, seeded by the OS).
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// Accepts only the exact shape we issue, so junk never reaches the database.
    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = input.len() == TOKEN_BYTES * 2
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// What the database stores and looks tokens up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_and_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.expose()), Some(a.clone()));
        assert_ne!(a.hash().as_str(), a.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"A".repeat(64), &"a".repeat(65)] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
    }
}
