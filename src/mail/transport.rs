//! Where messages go: an SMTP server through a connection pool, or `.eml`
//! files in a folder (the default, so a bare machine needs no mail server).

use std::sync::Arc;

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::{
        PoolConfig,
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use super::{
    SendError,
    smtp_pool::{SmtpPool, classify},
};
use crate::config::{MailConfig, MailTransport, SmtpConfig, SmtpTls};

#[derive(Clone)]
pub enum Transport {
    /// Plain or STARTTLS: our pool of no-delay connections (see `smtp_pool`).
    Pooled(Arc<SmtpPool>),
    /// Implicit TLS: lettre's pooled transport.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_config(mail: &MailConfig, smtp: &SmtpConfig) -> anyhow::Result<Self> {
        match mail.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&mail.file_dir).with_context(|| {
                    format!("while creating mail.file_dir {}", mail.file_dir.display())
                })?;
                Ok(Self::File(AsyncFileTransport::new(&mail.file_dir)))
            }
            MailTransport::Smtp => {
                let tls = match smtp.tls {
                    SmtpTls::None => None,
                    SmtpTls::Starttls | SmtpTls::Tls => Some(tls_parameters(smtp)?),
                };
                Ok(match (smtp.tls, tls) {
                    (SmtpTls::Tls, Some(tls)) => Self::Smtp(smtp_transport(smtp, tls)),
                    (_, tls) => Self::Pooled(Arc::new(SmtpPool::new(smtp, tls))),
                })
            }
        }
    }

    /// Whether bodies may go out as 8-bit: to files, always; over SMTP,
    /// when the server offers 8BITMIME (RFC 6152). lettre's own transport
    /// (implicit TLS) does not say, so its messages stay 7-bit clean.
    pub fn eight_bit_mime(&self) -> bool {
        match self {
            Self::Pooled(pool) => pool.eight_bit_mime(),
            Self::Smtp(_) => false,
            Self::File(_) => true,
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Pooled(pool) => pool.send(&message).await,
            Self::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|error| classify(&error)),
            Self::File(file) => file
                .send(message)
                .await
                .map(drop)
                .map_err(|error| SendError::Transient(error.to_string())),
        }
    }
}

/// Implicit TLS (SMTPS, usually port 465), through lettre's own pool.
fn smtp_transport(smtp: &SmtpConfig, tls: TlsParameters) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .tls(Tls::Wrapper(tls))
        .port(smtp.port)
        .timeout(Some(smtp.timeout))
        .pool_config(PoolConfig::new().max_size(smtp.concurrency));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().to_owned(),
        ));
    }
    builder.build()
}

/// The server's certificate must be valid for `smtp.host` and signed by a
/// public authority or by one in `smtp.ca_file`.
fn tls_parameters(smtp: &SmtpConfig) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if !smtp.ca_file.as_os_str().is_empty() {
        let path = smtp.ca_file.display();
        let pem = std::fs::read(&smtp.ca_file)
            .with_context(|| format!("cannot read smtp.ca_file {path}"))?;
        // The parser takes a file without a certificate as an empty list.
        let holds_one = pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----");
        let certificate = Certificate::from_pem(&pem)
            .ok()
            .filter(|_| holds_one)
            .with_context(|| format!("smtp.ca_file {path} holds no PEM certificate"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .with_context(|| format!("cannot set up TLS for smtp.host {}", smtp.host))
}
