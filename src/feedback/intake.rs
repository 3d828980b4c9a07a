//! Providers' webhooks as the site receives them (`POST /webhooks/{provider}`):
//! each request is proven to come from its provider (`webhooks`), its
//! reports go through the one policy, and what a provider cannot prove
//! by itself is kept here: Mailgun's tokens, so a replayed request is
//! refused, and SNS's signing certificates, fetched over HTTPS from an SNS
//! host only and shared by every instance through the database.

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};

use super::{
    Applied, Feedback, Feedbacks,
    webhooks::{Refused, mailgun, postmark, sendgrid, ses, sns},
};
use crate::{
    clock::Clock,
    config::{Secret, WebhooksConfig},
    store::{self, Store},
};

/// The providers with a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ses,
    Postmark,
    Mailgun,
    Sendgrid,
}

impl FromStr for Provider {
    type Err = ();
    fn from_str(name: &str) -> Result<Self, ()> {
        match name {
            "ses" => Ok(Self::Ses),
            "postmark" => Ok(Self::Postmark),
            "mailgun" => Ok(Self::Mailgun),
            "sendgrid" => Ok(Self::Sendgrid),
            _ => Err(()),
        }
    }
}

/// What of a request the providers' checks read.
pub struct WebhookRequest<'a> {
    pub authorization: Option<&'a str>,
    /// SendGrid's `X-Twilio-Email-Event-Webhook-Signature` and `-Timestamp`.
    pub sendgrid_signature: Option<&'a str>,
    pub sendgrid_timestamp: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The provider is not set up in `[webhooks]`: answered as if the
    /// route did not exist.
    #[error("this provider's webhook is not configured")]
    NotConfigured,
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Reports in an accepted request, and how many were new.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    pub reports: usize,
    pub stored: usize,
}

/// `[webhooks]`, checked once as the service starts.
struct Settings {
    ses_topics: Vec<String>,
    postmark: Option<(String, Secret)>,
    mailgun_key: Option<Secret>,
    sendgrid_key: Option<sendgrid::VerificationKey>,
}

/// A request's replay key where the proof covers the whole body: its digest.
fn body_key(provider: &str, request: &WebhookRequest<'_>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(request.body)
        .chain_update(request.sendgrid_timestamp.unwrap_or(""))
        .finalize();
    format!("{provider}:{}", hex::encode(digest))
}

/// The largest SNS certificate taken: a certificate is 2 KiB or so.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// Replay keys are kept this long: older signed requests are stale anyway
/// (Postmark's, which carry no time, are also kept by their events' ids).
const REPLAY_WINDOW_MS: i64 = 24 * 3600 * 1000;

#[derive(Clone)]
pub struct Webhooks {
    settings: Arc<Settings>,
    store: Store,
    clock: Clock,
    feedbacks: Feedbacks,
    http: reqwest::Client,
}

impl Webhooks {
    /// Fails on a SendGrid key that is not one.
    pub fn new(
        config: &WebhooksConfig,
        store: Store,
        clock: Clock,
        feedbacks: Feedbacks,
    ) -> anyhow::Result<Self> {
        let sendgrid_key = match config.sendgrid_public_key.trim() {
            "" => None,
            key => Some(
                sendgrid::VerificationKey::from_base64(key)
                    .map_err(|e| anyhow::anyhow!("webhooks.sendgrid_public_key: {e}"))?,
            ),
        };
        let postmark = (!config.postmark_password.is_empty()).then(|| {
            (
                config.postmark_username.clone(),
                config.postmark_password.clone(),
            )
        });
        let mailgun_key =
            (!config.mailgun_signing_key.is_empty()).then(|| config.mailgun_signing_key.clone());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the webhooks' HTTP client")?;
        let settings = Settings {
            ses_topics: config.ses_topics.clone(),
            postmark,
            mailgun_key,
            sendgrid_key,
        };
        Ok(Self {
            settings: Arc::new(settings),
            store,
            clock,
            feedbacks,
            http,
        })
    }

    /// Checks a request from `provider` and applies what it reports. A
    /// request accepted before is refused as a replay; it is remembered
    /// only once applied, so a provider's retry after a failure still counts.
    pub async fn receive(
        &self,
        provider: Provider,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        let (reports, replay_key) = match provider {
            Provider::Mailgun => self.mailgun(request)?,
            Provider::Sendgrid => (self.sendgrid(request)?, body_key("sendgrid", request)),
            Provider::Postmark => (self.postmark(request)?, body_key("postmark", request)),
            Provider::Ses => (self.ses(request).await?, body_key("ses", request)),
        };
        if store::feedback::replay_seen(&self.store, &replay_key).await? {
            return Err(Refused::Replayed.into());
        }
        let mut received = Received {
            reports: reports.len(),
            stored: 0,
        };
        for report in &reports {
            if let Applied::Stored { .. } = self.feedbacks.apply(report).await? {
                received.stored += 1;
            }
        }
        let now = self.clock.now_ms();
        let forget = now - REPLAY_WINDOW_MS;
        store::feedback::remember_replay(&self.store, &replay_key, now, forget).await?;
        Ok(received)
    }

    /// Mailgun signs only its timestamp and token, not the body: the token
    /// is what may be used once.
    fn mailgun(
        &self,
        request: &WebhookRequest<'_>,
    ) -> Result<(Vec<Feedback>, String), WebhookError> {
        let key = self
            .settings
            .mailgun_key
            .as_ref()
            .ok_or(WebhookError::NotConfigured)?;
        let body: serde_json::Value = serde_json::from_slice(request.body)
            .map_err(|e| Refused::Malformed(format!("not JSON: {e}")))?;
        let token = mailgun::verify(&body, key.expose().as_bytes(), self.clock.now())?;
        let replay_key = format!("mailgun:{}", token.0);
        Ok((mailgun::parse(&body["event-data"]), replay_key))
    }

    fn sendgrid(&self, request: &WebhookRequest<'_>) -> Result<Vec<Feedback>, WebhookError> {
        let key = self
            .settings
            .sendgrid_key
            .as_ref()
            .ok_or(WebhookError::NotConfigured)?;
        let (signature, timestamp) = (request.sendgrid_signature, request.sendgrid_timestamp);
        sendgrid::verify(key, signature, timestamp, request.body, self.clock.now())?;
        Ok(sendgrid::parse(request.body)?)
    }

    fn postmark(&self, request: &WebhookRequest<'_>) -> Result<Vec<Feedback>, WebhookError> {
        let (user, password) = self
            .settings
            .postmark
            .as_ref()
            .ok_or(WebhookError::NotConfigured)?;
        postmark::verify(user, password.expose(), request.authorization)?;
        Ok(postmark::parse(request.body)?)
    }

    async fn ses(&self, request: &WebhookRequest<'_>) -> Result<Vec<Feedback>, WebhookError> {
        if self.settings.ses_topics.is_empty() {
            return Err(WebhookError::NotConfigured);
        }
        let envelope = sns::parse(request.body)?;
        // Checked before anything is fetched: no URL of a stranger's is visited.
        if !self.settings.ses_topics.contains(&envelope.topic_arn) {
            return Err(Refused::UnknownTopic.into());
        }
        if !sns::certificate_url_allowed(&envelope.signing_cert_url) {
            return Err(Refused::UntrustedUrl.into());
        }
        let certificate = self.certificate(&envelope.signing_cert_url).await?;
        sns::verify(
            &envelope,
            &certificate,
            &self.settings.ses_topics,
            self.clock.now(),
        )?;
        match envelope.kind {
            sns::MessageType::Notification => Ok(ses::parse_notification(&envelope.message)?),
            sns::MessageType::SubscriptionConfirmation => {
                self.confirm_subscription(&envelope);
                Ok(Vec::new())
            }
            sns::MessageType::UnsubscribeConfirmation => Ok(Vec::new()),
        }
    }

    /// Visits the confirmation URL (an SNS host, checked with the
    /// signature) in the background: SNS waits for our answer, not for it.
    fn confirm_subscription(&self, envelope: &sns::Envelope) {
        let Some(url) = envelope.subscribe_url.clone() else {
            return;
        };
        let (http, topic) = (self.http.clone(), envelope.topic_arn.clone());
        tokio::spawn(async move {
            match http
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
            {
                Ok(_) => tracing::info!(%topic, "SNS subscription confirmed"),
                Err(error) => {
                    tracing::warn!(%topic, %error, "the SNS subscription could not be confirmed")
                }
            }
        });
    }

    /// The DER of the certificate at `url` (already checked to be an SNS
    /// certificate's): from the database if an instance fetched it before.
    /// One that cannot be fetched or read refuses the request (401): the
    /// sender did not prove itself, and nothing unread is kept.
    async fn certificate(&self, url: &str) -> Result<Vec<u8>, WebhookError> {
        if let Some(pem) = store::feedback::certificate(&self.store, url).await? {
            return Ok(der_of(&pem).ok_or(Refused::BadSignature)?);
        }
        let pem = match self.fetch_certificate(url).await {
            Ok(pem) => pem,
            Err(error) => {
                tracing::warn!(%url, error = crate::telemetry::error_text(&error), "an SNS certificate could not be fetched");
                return Err(Refused::BadSignature.into());
            }
        };
        let der = der_of(&pem).ok_or(Refused::BadSignature)?;
        let now = self.clock.now_ms();
        store::feedback::save_certificate(&self.store, url, &pem, now).await?;
        Ok(der)
    }

    /// The PEM at `url`, read no further than [`MAX_CERTIFICATE_BYTES`].
    async fn fetch_certificate(&self, url: &str) -> anyhow::Result<String> {
        use futures_util::StreamExt;
        let response = self.http.get(url).send().await?.error_for_status()?;
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk?);
            anyhow::ensure!(body.len() <= MAX_CERTIFICATE_BYTES, "too large");
        }
        String::from_utf8(body).context("not text")
    }
}

/// The first certificate of a PEM text.
fn der_of(pem: &str) -> Option<Vec<u8>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}
