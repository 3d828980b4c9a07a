//! The Standard Webhooks signature scheme: a secret `whsec_<base64 key>`,
//! and `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: 24 random bytes, as the scheme writes them.
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header's value for one request.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> anyhow::Result<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .map_err(|_| anyhow::anyhow!("the endpoint's secret is not base64"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| anyhow::anyhow!("the endpoint's secret cannot key an HMAC"))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its
    /// `spec/standard-webhooks.md`, "Signature scheme").
    #[test]
    fn signs_as_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn new_secrets_differ_and_sign() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_") && a.len() == 6 + 32, "{a}");
        assert!(sign(&a, "id", 1, "{}").unwrap().starts_with("v1,"));
    }
}
