//! Links a reader keeps using (unsubscribe, preferences): the subscriber's id
//! and an HMAC over it, so nothing is stored and nothing can be guessed
//! (E-04). The id is a UUID, never the secret (D-03); the 128-bit MAC is.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a reader link may be used for; a link for one never works for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Unsubscribe,
    Preferences,
}

impl LinkPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Unsubscribe => b"unsubscribe",
            Self::Preferences => b"preferences",
        }
    }
}

const ID_HEX: usize = 32;
const MAC_BYTES: usize = 16;

#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The 64-character token for `subscriber_id` (a UUID), or `None` if it is not one.
    pub fn token(&self, purpose: LinkPurpose, subscriber_id: &str) -> Option<String> {
        let id = uuid::Uuid::parse_str(subscriber_id)
            .ok()?
            .simple()
            .to_string();
        let mac = self.mac(purpose, &id).finalize().into_bytes();
        Some(format!("{id}{}", hex::encode(&mac[..MAC_BYTES])))
    }

    /// The subscriber id a token was made for, if its MAC checks out.
    pub fn verify(&self, purpose: LinkPurpose, token: &str) -> Option<String> {
        if token.len() != ID_HEX + MAC_BYTES * 2 || !token.is_ascii() {
            return None;
        }
        let (id, mac) = token.split_at(ID_HEX);
        let mac = hex::decode(mac).ok()?;
        let uuid = uuid::Uuid::try_parse(id).ok()?;
        self.mac(purpose, id).verify_truncated_left(&mac).ok()?;
        Some(uuid.to_string())
    }

    fn mac(&self, purpose: LinkPurpose, id: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(purpose.label());
        mac.update(b":");
        mac.update(id.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_verifies_only_for_its_purpose_and_key() {
        let signer = LinkSigner::new(b"key");
        let id = uuid::Uuid::now_v7().to_string();
        let token = signer.token(LinkPurpose::Unsubscribe, &id).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(signer.verify(LinkPurpose::Unsubscribe, &token), Some(id));
        assert_eq!(signer.verify(LinkPurpose::Preferences, &token), None);
        assert_eq!(
            LinkSigner::new(b"other").verify(LinkPurpose::Unsubscribe, &token),
            None
        );
        let mut forged = token.clone();
        forged.replace_range(63.., if token.ends_with('0') { "1" } else { "0" });
        assert_eq!(signer.verify(LinkPurpose::Unsubscribe, &forged), None);
        assert_eq!(signer.verify(LinkPurpose::Unsubscribe, "é"), None);
    }
}
