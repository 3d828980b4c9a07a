//! Email: templates rendered with minijinja, messages built with lettre, and
//! the transports that carry them (SMTP, or `.eml` files).

mod breaker;
pub mod dkim;
mod message;
mod pipelined;
mod relay;
mod relays;
mod render;
mod smtp_pool;
mod transport;

pub use breaker::BreakerState;
pub use message::{
    BounceTag, DELIVERY_HEADER, Envelope, ListHeaders, PROVIDER_TAG_NAME, ProviderTags,
    ReturnPaths, build_message, message_id_domain,
};
pub use relay::RelayStatus;
pub use relays::{Attempts, Mail, Relays, Sending};
pub use render::{EmailTemplates, RenderedEmail};
pub use transport::Transport;

/// How a send failed, which decides whether it is tried again (E-21).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 4xx replies, refused or dropped connections, timeouts: try again later.
    #[error("transient: {0}")]
    Transient(String),
    /// 5xx replies and messages the server can never accept: do not retry.
    #[error("permanent: {0}")]
    Permanent(String),
}
