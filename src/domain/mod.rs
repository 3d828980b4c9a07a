//! Validated values of the business. Nothing here knows about HTTP, SQL or SMTP.

mod email;
mod name;
mod password;
mod slug;
mod token;

pub use email::{EmailAddress, EmailError, mask_email};
pub use name::{NameError, SubscriberName};
pub use password::{NewPassword, PasswordError};
pub use slug::{Slug, SlugError};
pub use token::{Token, TokenHash, TokenPurpose};

/// Hex SHA-256 of `text`, used as the version id of wording shown to readers (G-05).
pub fn content_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}
