//! Where messages go: SMTP relays (`relays`), each through a connection
//! pool, or `.eml` files in a folder (the default, so a bare machine needs
//! no mail server).

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use lettre::Message;

use super::{
    SendError,
    relays::{Attempts, Mail, Relays, Sending},
};
use crate::{
    clock::Clock,
    config::{MailConfig, MailTransport, SmtpConfig},
};

#[derive(Clone)]
pub enum Transport {
    /// One or more SMTP relays (`relays`).
    Relays(Arc<Relays>),
    /// `.eml` files in `dir`, written `concurrency` at a time, each named
    /// by a time-ordered id, so `ls` lists them in the order they were sent.
    File {
        dir: Arc<PathBuf>,
        concurrency: usize,
    },
}

impl Transport {
    pub fn from_config(mail: &MailConfig, smtp: &SmtpConfig, clock: Clock) -> anyhow::Result<Self> {
        match mail.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&mail.file_dir).with_context(|| {
                    format!("while creating mail.file_dir {}", mail.file_dir.display())
                })?;
                Ok(Self::File {
                    dir: Arc::new(mail.file_dir.clone()),
                    concurrency: smtp.concurrency.max(1) as usize,
                })
            }
            MailTransport::Smtp => Ok(Self::Relays(Arc::new(Relays::from_config(smtp, clock)?))),
        }
    }

    /// Whether bodies may go out as 8-bit: to files, always; over SMTP,
    /// when every relay offers 8BITMIME (RFC 6152), since a message may
    /// fail over to any of them.
    pub fn eight_bit_mime(&self) -> bool {
        match self {
            Self::Relays(relays) => relays.eight_bit_mime(),
            Self::File { .. } => true,
        }
    }

    /// The relays, when mail goes over SMTP.
    pub fn relays(&self) -> Option<Arc<Relays>> {
        match self {
            Self::Relays(relays) => Some(relays.clone()),
            Self::File { .. } => None,
        }
    }

    /// Messages of this kind that may be sent at once.
    pub fn concurrency(&self, mail: Mail) -> usize {
        match self {
            Self::Relays(relays) => relays.concurrency(mail),
            Self::File { concurrency, .. } => *concurrency,
        }
    }

    /// Messages of this kind per second at most; 0 for no limit.
    pub fn rate_per_second(&self, mail: Mail) -> u32 {
        match self {
            Self::Relays(relays) => relays.rate_per_second(mail),
            Self::File { .. } => 0,
        }
    }

    /// Sends `message` through a relay in rotation, failing over to the
    /// next while one did not take it. `may_start` is asked before each
    /// attempt (after any wait for a connection or the rate), so a send
    /// never starts too late to end within its lease.
    pub async fn send(
        &self,
        message: &Message,
        mail: Mail,
        may_start: impl Fn() -> bool,
    ) -> Sending {
        match self {
            Self::Relays(relays) => relays.send(message, mail, may_start).await,
            Self::File { dir, .. } => {
                if !may_start() {
                    return Sending::TooLate;
                }
                let path = dir.join(format!("{}.eml", crate::store::new_id()));
                let result = tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|error| {
                        SendError::Transient(format!("cannot write {}: {error}", path.display()))
                    });
                Sending::Done(Attempts {
                    relay: None,
                    result,
                    deferred_by: Vec::new(),
                    domain_deferred: false,
                })
            }
        }
    }
}
