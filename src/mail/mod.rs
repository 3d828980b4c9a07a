//! Email: templates rendered with minijinja, messages built with lettre, and
//! the transports that carry them (SMTP, or `.eml` files).

pub mod dkim;
mod message;
mod render;
mod smtp_pool;
mod transport;

pub use message::{Envelope, ListHeaders, build_message, message_id_domain};
pub use render::{EmailTemplates, RenderedEmail};
pub use transport::{SendError, Transport};
