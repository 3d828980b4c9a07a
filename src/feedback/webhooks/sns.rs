//! Amazon SNS posts a signed JSON envelope: `Notification`s carrying SES's
//! reports in `Message` (read by the `ses` module), and the
//! `SubscriptionConfirmation` and `UnsubscribeConfirmation` of the
//! subscription itself ("Verifying the signatures of Amazon SNS messages").
//!
//! Trust: the signature is RSA with SHA-256 (`SignatureVersion` 2) under the
//! key of the certificate at `SigningCertURL`. The certificate's chain is
//! not checked here. What makes it Amazon's is where it comes from: the
//! caller fetches it over HTTPS (the server's certificate checked against
//! the usual web roots) only from a URL [`certificate_url_allowed`]
//! accepts, on an `sns.<region>.amazonaws.com` host, and caches it by
//! URL. A certificate served by anyone else is never fetched, and
//! [`verify`] refuses an envelope that names another URL.
//! `SignatureVersion` 1 (SHA1withRSA) is refused: SHA-1 signatures can no
//! longer be trusted, and set to 2 a topic signs with SHA-256.
//!
//! Replays: SNS keeps a message's `MessageId` and `Timestamp` (its
//! publication time) when it retries, and retries an HTTPS endpoint for at
//! most 3,600 seconds ("Amazon SNS message delivery retries"), so
//! [`verify`] accepts an hour and [`MAX_SKEW`] of age. Within that hour the
//! caller refuses a `MessageId` it has already acted on.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, TimeDelta, Utc};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use url::{Host, Url};
use webpki::EndEntityCert;

use super::{Refused, check_fresh};

/// How far our clock and Amazon's may disagree, either side.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The oldest envelope accepted: SNS's longest retry (an hour), and the clock skew.
pub const MAX_AGE: TimeDelta = TimeDelta::minutes(60 + 5);

const SHA1_REFUSED: &str = "SignatureVersion 1 (SHA1withRSA) is not accepted: set the \
    topic's SignatureVersion attribute to 2 (aws sns set-topic-attributes --topic-arn … \
    --attribute-name SignatureVersion --attribute-value 2)";

/// What an SNS message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MessageType {
    /// A message published to the topic: for us, an SES report.
    Notification,
    /// The subscription waits for the caller to visit `SubscribeURL`.
    SubscriptionConfirmation,
    /// The subscription was removed.
    UnsubscribeConfirmation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// An SNS message as posted, before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// Only notifications published with a subject have one.
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    /// Confirmations only: the URL that confirms the subscription.
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    /// Confirmations only.
    pub token: Option<String>,
}

/// Reads the JSON body SNS posted.
pub fn parse(body: &[u8]) -> Result<Envelope, Refused> {
    serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not an SNS message: {e}")))
}

/// The text SNS signs: for a notification `Message`, `MessageId`, `Subject`
/// (if present), `Timestamp`, `TopicArn` and `Type`; for a confirmation
/// `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`
/// and `Type`; each as its name, a newline, its value, a newline.
pub fn string_to_sign(envelope: &Envelope) -> String {
    let mut text = String::new();
    push_pair(&mut text, "Message", &envelope.message);
    push_pair(&mut text, "MessageId", &envelope.message_id);
    if envelope.kind == MessageType::Notification {
        if let Some(subject) = &envelope.subject {
            push_pair(&mut text, "Subject", subject);
        }
        push_pair(&mut text, "Timestamp", &envelope.timestamp);
    } else {
        let subscribe_url = envelope.subscribe_url.as_deref().unwrap_or_default();
        push_pair(&mut text, "SubscribeURL", subscribe_url);
        push_pair(&mut text, "Timestamp", &envelope.timestamp);
        push_pair(
            &mut text,
            "Token",
            envelope.token.as_deref().unwrap_or_default(),
        );
    }
    push_pair(&mut text, "TopicArn", &envelope.topic_arn);
    push_pair(&mut text, "Type", envelope.kind.as_str());
    text
}

fn push_pair(text: &mut String, name: &str, value: &str) {
    text.push_str(name);
    text.push('\n');
    text.push_str(value);
    text.push('\n');
}

/// Whether a `SigningCertURL` may be fetched: an SNS URL (as for
/// [`subscribe_url_allowed`]) whose path ends in `.pem`, without query or
/// fragment.
pub fn certificate_url_allowed(url: &str) -> bool {
    sns_url(url).is_some_and(|url| {
        // SNS's own certificates only: one path shape, no arguments.
        let file = url.path().strip_prefix("/SimpleNotificationService-");
        file.is_some_and(|file| {
            file.strip_suffix(".pem").is_some_and(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        }) && url.query().is_none()
            && url.fragment().is_none()
    })
}

/// Whether a `SubscribeURL` may be visited: `https` on port 443, without
/// user or password, on `sns.<region>.amazonaws.com` or
/// `sns.<region>.amazonaws.com.cn`, the region being letters, digits and
/// hyphens (`us-gov-west-1`).
pub fn subscribe_url_allowed(url: &str) -> bool {
    sns_url(url).is_some()
}

/// `url` parsed, if it is an SNS URL as [`subscribe_url_allowed`] says.
fn sns_url(url: &str) -> Option<Url> {
    let url = Url::parse(url).ok()?;
    let on_sns_host = match url.host() {
        Some(Host::Domain(host)) => is_sns_host(host),
        _ => false,
    };
    let plain = url.scheme() == "https"
        && url.port_or_known_default() == Some(443)
        && url.username().is_empty()
        && url.password().is_none();
    (on_sns_host && plain).then_some(url)
}

fn is_sns_host(host: &str) -> bool {
    let region = host.strip_prefix("sns.").and_then(|rest| {
        rest.strip_suffix(".amazonaws.com")
            .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
    });
    region.is_some_and(|region| {
        !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// Checks an envelope: its topic is one of `allowed_topics`, its URLs are
/// SNS's, it is signed (version 2) by the key of `certificate_der` (fetched
/// from its `SigningCertURL`), and it was published at most [`MAX_AGE`] ago.
pub fn verify(
    envelope: &Envelope,
    certificate_der: &[u8],
    allowed_topics: &[String],
    now: DateTime<Utc>,
) -> Result<(), Refused> {
    if !allowed_topics.contains(&envelope.topic_arn) {
        return Err(Refused::UnknownTopic);
    }
    if !certificate_url_allowed(&envelope.signing_cert_url) {
        return Err(Refused::UntrustedUrl);
    }
    if envelope.kind == MessageType::SubscriptionConfirmation
        && !envelope
            .subscribe_url
            .as_deref()
            .is_some_and(subscribe_url_allowed)
    {
        return Err(Refused::UntrustedUrl);
    }
    match envelope.signature_version.trim() {
        "2" => {}
        "1" => return Err(Refused::Unsupported(SHA1_REFUSED)),
        _ => return Err(Refused::Unsupported("only SignatureVersion 2 is accepted")),
    }
    let signature = STANDARD
        .decode(envelope.signature.trim())
        .map_err(|_| Refused::BadSignature)?;
    let der = CertificateDer::from_slice(certificate_der);
    let certificate = EndEntityCert::try_from(&der).map_err(|_| Refused::BadSignature)?;
    certificate
        .verify_signature(
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            string_to_sign(envelope).as_bytes(),
            &signature,
        )
        .map_err(|_| Refused::BadSignature)?;
    let published = DateTime::parse_from_rfc3339(envelope.timestamp.trim())
        .map_err(|_| Refused::Malformed("the Timestamp is not an RFC 3339 time".into()))?;
    check_fresh(published.with_timezone(&Utc), now, MAX_AGE, MAX_SKEW)
}

#[cfg(test)]
mod tests;
