//! The bounce mailbox, read over IMAP (`[bounces.imap]`): every message in
//! the folder is read, what it reports is applied, and only then is it
//! moved to the done folder. A message whose report could not be stored
//! stays and is read again next time; one read twice (a crash between
//! storing and moving, two instances at once) is stored once, because
//! reports are keyed by their own ids. Instances take turns: one read per
//! poll interval across all of them (`mailbox_polls`).

use std::{fmt, sync::Arc};

use anyhow::Context;
use futures_util::TryStreamExt;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, pki_types::ServerName},
};

use super::{Applied, Feedbacks, report};
use crate::{
    clock::{self, Clock},
    config::{ImapConfig, ImapTls},
    store::{self, Store},
};

/// A connection, in clear or over TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Stream for T {}

type Session = async_imap::Session<Box<dyn Stream>>;

/// Messages fetched at a time.
const BATCH: usize = 50;

/// The longest one read of the mailbox may take.
const READ_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// What one read of the mailbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MailboxRead {
    /// Messages read and moved to the done folder.
    pub messages: usize,
    /// Reports in them stored for the first time.
    pub stored: usize,
    /// Messages that held no report (auto-replies, people writing in).
    pub not_reports: usize,
}

#[derive(Clone)]
pub struct BounceMailbox {
    config: ImapConfig,
    tls: Option<TlsConnector>,
    store: Store,
    clock: Clock,
    feedbacks: Feedbacks,
}

impl BounceMailbox {
    /// `None` when no mailbox is configured; an error for an unusable CA file.
    pub fn new(
        config: &ImapConfig,
        store: Store,
        clock: Clock,
        feedbacks: Feedbacks,
    ) -> anyhow::Result<Option<Self>> {
        if config.host.is_empty() {
            return Ok(None);
        }
        let tls = match config.tls {
            ImapTls::None => None,
            ImapTls::Tls | ImapTls::Starttls => Some(tls_connector(config)?),
        };
        Ok(Some(Self {
            config: config.clone(),
            tls,
            store,
            clock,
            feedbacks,
        }))
    }

    /// Reads the mailbox if no instance has this poll interval yet.
    pub async fn poll_due(&self) -> anyhow::Result<Option<MailboxRead>> {
        let now = self.clock.now_ms();
        let slot = now / clock::ms(self.config.poll_interval).max(1);
        if !store::feedback::claim_mailbox_poll(&self.store, slot, now).await? {
            return Ok(None);
        }
        self.read().await.map(Some)
    }

    /// Reads every message in the folder now, within [`READ_TIME_LIMIT`]:
    /// a server that stalls costs one read, not the reader.
    pub async fn read(&self) -> anyhow::Result<MailboxRead> {
        let read = async {
            let mut session = self.connect().await?;
            let read = self.read_folder(&mut session).await;
            session.logout().await.ok();
            read
        };
        tokio::time::timeout(READ_TIME_LIMIT, read)
            .await
            .context("the bounce mailbox did not answer in time")?
    }

    async fn read_folder(&self, session: &mut Session) -> anyhow::Result<MailboxRead> {
        // Made once; "already exists" is the usual answer.
        session.create(&self.config.done_folder).await.ok();
        session
            .select(&self.config.folder)
            .await
            .with_context(|| format!("cannot open the bounce folder {:?}", self.config.folder))?;
        let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
        uids.sort_unstable();
        let mut read = MailboxRead::default();
        for batch in uids.chunks(BATCH) {
            let set = uid_set(batch);
            let fetched: Vec<_> = session
                .uid_fetch(&set, "BODY.PEEK[]")
                .await?
                .try_collect()
                .await?;
            let mut handled = Vec::new();
            for message in &fetched {
                let (Some(uid), Some(raw)) = (message.uid, message.body()) else {
                    continue;
                };
                // One that cannot be stored stays for the next read, and
                // does not hold up the others.
                match self.apply(raw, &mut read).await {
                    Ok(()) => handled.push(uid),
                    Err(error) => tracing::warn!(
                        uid,
                        error = crate::telemetry::error_text(&error),
                        "a bounce report could not be stored; it stays in the mailbox"
                    ),
                }
            }
            if !handled.is_empty() {
                self.move_done(session, &uid_set(&handled)).await?;
                read.messages += handled.len();
            }
        }
        Ok(read)
    }

    async fn apply(&self, raw: &[u8], read: &mut MailboxRead) -> anyhow::Result<()> {
        let reports = report::parse(raw);
        if reports.is_empty() {
            read.not_reports += 1;
        }
        for report in &reports {
            if let Applied::Stored { .. } = self.feedbacks.apply(report).await? {
                read.stored += 1;
            }
        }
        Ok(())
    }

    /// MOVE where the server has it (RFC 6851), else copy, flag deleted
    /// and expunge.
    async fn move_done(&self, session: &mut Session, set: &str) -> anyhow::Result<()> {
        let done = &self.config.done_folder;
        if session.uid_mv(set, done).await.is_ok() {
            return Ok(());
        }
        session
            .uid_copy(set, done)
            .await
            .with_context(|| format!("cannot move handled reports to {done:?}"))?;
        let flagged: Vec<_> = session
            .uid_store(set, "+FLAGS.SILENT (\\Seen \\Deleted)")
            .await?
            .try_collect()
            .await?;
        drop(flagged);
        let expunged: Vec<_> = session.expunge().await?.try_collect().await?;
        drop(expunged);
        Ok(())
    }

    async fn connect(&self) -> anyhow::Result<Session> {
        let config = &self.config;
        let address = (config.host.as_str(), config.port);
        let tcp = TcpStream::connect(address).await.with_context(|| {
            format!(
                "cannot reach the bounce mailbox at {}:{}",
                config.host, config.port
            )
        })?;
        let stream: Box<dyn Stream> = match (&self.tls, config.tls) {
            (Some(tls), ImapTls::Tls) => Box::new(self.handshake(tls, tcp).await?),
            (Some(tls), ImapTls::Starttls) => {
                let mut client = async_imap::Client::new(tcp);
                client
                    .read_response()
                    .await?
                    .context("the server closed at once")?;
                client.run_command_and_check_ok("STARTTLS", None).await?;
                Box::new(self.handshake(tls, client.into_inner()).await?)
            }
            _ => Box::new(tcp),
        };
        let mut client = async_imap::Client::new(stream);
        if config.tls != ImapTls::Starttls {
            client
                .read_response()
                .await?
                .context("the server closed at once")?;
        }
        client
            .login(&config.username, config.password.expose())
            .await
            .map_err(|(error, _)| anyhow::anyhow!("the bounce mailbox refused the login: {error}"))
    }

    async fn handshake(
        &self,
        tls: &TlsConnector,
        tcp: TcpStream,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(self.config.host.clone())
            .context("bounces.imap.host is not a valid server name")?;
        tls.connect(name, tcp)
            .await
            .context("TLS with the bounce mailbox failed")
    }
}

/// `1,2,5` for UIDs 1, 2 and 5.
fn uid_set(uids: &[u32]) -> String {
    let parts: Vec<String> = uids.iter().map(u32::to_string).collect();
    parts.join(",")
}

/// The public authorities, plus those of `bounces.imap.ca_file`.
fn tls_connector(config: &ImapConfig) -> anyhow::Result<TlsConnector> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !config.ca_file.as_os_str().is_empty() {
        let path = config.ca_file.display();
        let certificates: Vec<_> = CertificateDer::pem_file_iter(&config.ca_file)
            .with_context(|| format!("cannot read bounces.imap.ca_file {path}"))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("bounces.imap.ca_file {path} is not PEM"))?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "bounces.imap.ca_file {path} holds no certificate"
        );
        for certificate in certificates {
            roots
                .add(certificate)
                .context("a certificate in bounces.imap.ca_file is unusable")?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
