//! The tag of a per-message envelope sender (VERP): `bounces+<tag>@domain`.
//! A relay that accepts a message and bounces it later mails the bounce to
//! the envelope sender, often without the original headers, so the tag alone
//! must say which message it was: the reader's id and which of their
//! messages, with a MAC so that nobody can make up a tag and suppress a
//! reader. The reader's address is never in it.
//!
//! The tag must fit an address's 64-octet local part beside the configured
//! prefix (`bounces+`), so it is short: a digest names the reader and three
//! bytes of the campaign's id (matched among that reader's deliveries), and
//! the MAC is 5 bytes, which a forger would have to guess by sending ~2^39
//! bounce messages.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAC_BYTES: usize = 5;
/// Bytes of a campaign id a digest's tag carries: its last three, which
/// are random in a UUIDv7.
const CAMPAIGN_BYTES: usize = 3;
/// The longest tag: a digest's, `d` and 24 bytes in hex.
pub const MAX_TAG_LEN: usize = 1 + 2 * (16 + CAMPAIGN_BYTES + MAC_BYTES);

/// Which message a tag names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// One reader's copy of a campaign; `campaign_suffix` is the last six
    /// hex digits of the campaign's id.
    Digest {
        subscriber_id: String,
        campaign_suffix: String,
    },
    /// An account email (`outbox` row).
    Account { outbox_id: String },
}

#[derive(Clone)]
pub struct ReturnPathSigner {
    key: Vec<u8>,
}

impl ReturnPathSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The tag of one reader's digest. An id that is not a UUID (a
    /// preview's) counts as the nil UUID: its tag names no delivery.
    pub fn digest_tag(&self, campaign_id: &str, subscriber_id: &str) -> String {
        let mut payload = uuid_or_nil(subscriber_id).as_bytes().to_vec();
        payload.extend_from_slice(&uuid_or_nil(campaign_id).as_bytes()[16 - CAMPAIGN_BYTES..]);
        self.seal('d', &payload)
    }

    /// The tag of an account email.
    pub fn account_tag(&self, outbox_id: &str) -> String {
        self.seal('a', uuid_or_nil(outbox_id).as_bytes())
    }

    /// What a tag names, if its MAC checks out. Case is ignored: some
    /// servers change the case of local parts.
    pub fn read(&self, tag: &str) -> Option<Tagged> {
        let tag = tag.to_ascii_lowercase();
        let kind = tag.chars().next()?;
        let bytes = hex::decode(tag.get(1..)?).ok()?;
        let (payload, mac) = bytes.split_at(bytes.len().checked_sub(MAC_BYTES)?);
        self.mac(kind, payload).verify_truncated_left(mac).ok()?;
        let uuid_at = |at: usize| {
            let bytes: [u8; 16] = payload.get(at..at + 16)?.try_into().ok()?;
            Some(uuid::Uuid::from_bytes(bytes).to_string())
        };
        match (kind, payload.len()) {
            ('d', 19) => Some(Tagged::Digest {
                subscriber_id: uuid_at(0)?,
                campaign_suffix: hex::encode(&payload[16..]),
            }),
            ('a', 16) => Some(Tagged::Account {
                outbox_id: uuid_at(0)?,
            }),
            _ => None,
        }
    }

    fn seal(&self, kind: char, payload: &[u8]) -> String {
        let mac = self.mac(kind, payload).finalize().into_bytes();
        format!(
            "{kind}{}{}",
            hex::encode(payload),
            hex::encode(&mac[..MAC_BYTES])
        )
    }

    fn mac(&self, kind: char, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(b"return-path:");
        mac.update(&[kind as u8]);
        mac.update(payload);
        mac
    }
}

fn uuid_or_nil(id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(id).unwrap_or_default()
}

/// The tag of an address's local part (`bounces+<tag>@…`): what follows
/// the first `+`, up to the `@`. An address in angle brackets, after a
/// display name or not, is read inside them.
pub fn tag_of(address: &str) -> Option<&str> {
    let address = match address.rsplit_once('<') {
        Some((_, bracketed)) => bracketed
            .split_once('>')
            .map_or(bracketed, |(inside, _)| inside),
        None => address,
    };
    let (local, _domain) = address.trim().rsplit_once('@')?;
    let (_, tag) = local.split_once('+')?;
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_tag_names_its_message_and_only_with_its_key() {
        let signer = ReturnPathSigner::new(b"key");
        let campaign = uuid::Uuid::now_v7().to_string();
        let reader = uuid::Uuid::now_v7().to_string();
        let tag = signer.digest_tag(&campaign, &reader);
        assert_eq!(tag.len(), MAX_TAG_LEN);
        assert!(!tag.contains(&campaign.replace('-', "")));
        assert_eq!(
            signer.read(&tag.to_uppercase()),
            Some(Tagged::Digest {
                subscriber_id: reader,
                campaign_suffix: campaign.replace('-', "")[26..].to_owned(),
            })
        );
        assert_eq!(ReturnPathSigner::new(b"other").read(&tag), None);
        let outbox = uuid::Uuid::now_v7().to_string();
        let account = signer.account_tag(&outbox);
        assert_eq!(
            signer.read(&account),
            Some(Tagged::Account { outbox_id: outbox })
        );
    }

    #[test]
    fn a_changed_or_cut_tag_names_nothing() {
        let signer = ReturnPathSigner::new(b"key");
        let reader = uuid::Uuid::now_v7().to_string();
        let tag = signer.digest_tag(&uuid::Uuid::now_v7().to_string(), &reader);
        let mut changed = tag.clone().into_bytes();
        changed[5] = if changed[5] == b'0' { b'1' } else { b'0' };
        for bad in [
            String::from_utf8(changed).unwrap(),
            tag[..tag.len() - 2].to_owned(),
            format!("a{}", &tag[1..]),
            "d".to_owned(),
            String::new(),
            "dzz".to_owned(),
        ] {
            assert_eq!(signer.read(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_tag_is_what_follows_the_plus_in_the_local_part() {
        assert_eq!(tag_of("bounces+d00ff@news.example"), Some("d00ff"));
        assert_eq!(tag_of("<bounces+a1+b2@news.example>"), Some("a1+b2"));
        assert_eq!(tag_of("bounces@news.example"), None);
        assert_eq!(tag_of("bounces+@news.example"), None);
        assert_eq!(tag_of("no-at-sign+x"), None);
        assert_eq!(tag_of("News <bounces+x2@example.com>"), Some("x2"));
        assert_eq!(tag_of("News+1 <bounces@example.com>"), None);
        assert_eq!(tag_of("bounces@ex+ample.com"), None);
    }
}
