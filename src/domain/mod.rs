//! Validated values of the business. Nothing here knows about HTTP, SQL or
//! SMTP, and nothing here imports another module of the crate: `config`
//! parses its schedules and feeds into the types here.

mod category;
mod email;
mod feed;
mod feedback;
mod name;
mod network;
mod password;
mod reader_link;
mod return_path;
mod schedule;
mod slug;
mod token;
mod webhook_event;

pub use category::{MAX_CATEGORIES, valid_category};
pub use email::{EmailAddress, EmailError, mask_addresses, mask_email};
pub use feed::{Feed, FeedConfig, check_feed_url, check_url, every_quarter_hour};
pub use feedback::{Feedback, Kind, Source};
pub use name::{NameError, SubscriberName};
pub use network::{Reach, is_public, network};
pub use password::{NewPassword, PasswordError};
pub use reader_link::{LinkPurpose, LinkSigner};
pub use return_path::{MAX_TAG_LEN, ReturnPathSigner, Tagged, tag_of};
pub use schedule::{Frequency, Schedule, ScheduleConfig};
pub use slug::{Slug, SlugError};
pub use token::{Token, TokenHash, TokenPurpose};
pub use webhook_event::{About, EventType, WebhookEvent};

/// Hex SHA-256 of `text`, used as the version id of wording shown to readers (G-05).
pub fn content_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Hex HMAC-SHA256 of `text` under `key`: how an erased or suppressed address
/// is kept without keeping the address (G-13).
pub fn keyed_hash(key: &[u8], text: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
