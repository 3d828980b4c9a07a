//! A pool of SMTP connections on sockets with `TCP_NODELAY`.
//!
//! lettre's own pool writes a message and its end-of-data marker in two
//! writes on a socket with Nagle's algorithm on, so the marker waits for the
//! server's delayed ACK: about 40 ms per message per connection, whatever
//! the machine (BENCHMARKS.md). The same lettre connection on a no-delay
//! socket does not wait. Used for `smtp.tls = "none"` and `"starttls"`.
//!
//! Where the server offers PIPELINING (RFC 2920), a message takes two
//! writes and two waits instead of five and four (see `pipelined`).

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use lettre::{
    Message,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        commands::Ehlo,
        extension::{ClientId, Extension},
    },
};
use tokio::{net::TcpStream, sync::Mutex, time::timeout};

use super::pipelined;
use crate::{config::RelayConfig, domain::mask_addresses};

/// How a relay failed a message.
#[derive(Debug)]
pub(super) enum RelayError {
    /// It left the message with us: no connection, a cut one, a 4xx reply.
    NotTaken(String),
    /// The recipient's side deferred it for its own reasons, by an
    /// enhanced status: its mailbox (4.2.x: full, greylisted) or its
    /// domain's policy (4.7.x, `policy`: Gmail's 421 4.7.28, Yahoo's 421
    /// 4.7.0). Not the relay's fault, and no other relay would do better.
    RecipientDeferred { text: String, policy: bool },
    /// It may have taken it: no answer in time.
    Unsure(String),
    /// It refused it for good (5xx).
    Refused(String),
}

/// A connection, and whether its server offered PIPELINING, which
/// lettre's `ServerInfo` does not record.
struct Connection {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
}

/// A failed send, and whether the message may have reached the server (a
/// reply, a timeout, a connection lost after the body was written) rather
/// than the connection failing before it.
struct Failure {
    replied: bool,
    error: RelayError,
}

pub struct SmtpPool {
    host: String,
    port: u16,
    /// Set for `smtp.tls = "starttls"`.
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<Connection>>,
    /// Whether the server took 8-bit bodies (8BITMIME) when last asked.
    /// False until a connection shows it, so a message built before the
    /// first connection is 7-bit clean.
    eight_bit_mime: AtomicBool,
}

impl SmtpPool {
    pub fn new(config: &RelayConfig, timeout: Duration, starttls: Option<TlsParameters>) -> Self {
        Self {
            host: config.host.clone(),
            port: config.port,
            starttls,
            credentials: (!config.username.is_empty()).then(|| {
                Credentials::new(config.username.clone(), config.password.expose().to_owned())
            }),
            timeout,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            eight_bit_mime: AtomicBool::new(false),
        }
    }

    /// Whether messages may be built with 8-bit bodies. A message built
    /// so for a server that no longer offers 8BITMIME is refused by lettre
    /// before it is sent, as a transient failure, and its retry is built
    /// 7-bit clean.
    pub fn eight_bit_mime(&self) -> bool {
        self.eight_bit_mime.load(Ordering::Relaxed)
    }

    /// Sends on an idle connection, or a new one. The caller holds one of
    /// the relay's permits, which bound the connections.
    pub async fn send(&self, message: &Message) -> Result<(), RelayError> {
        let body = message.formatted();
        let pooled = self.idle.lock().await.pop();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        match self.send_on(&mut connection, message, &body).await {
            Ok(()) => {
                self.idle.lock().await.push(connection);
                Ok(())
            }
            // The server may have closed an idle connection: try once on a
            // new one. A reply (such as 451) is the server's answer and stands.
            Err(Failure { replied: false, .. }) if reused => {
                let mut fresh = self.connect().await?;
                self.send_on(&mut fresh, message, &body)
                    .await
                    .map_err(|f| f.error)?;
                self.idle.lock().await.push(fresh);
                Ok(())
            }
            Err(failure) => Err(failure.error),
        }
    }

    async fn send_on(
        &self,
        connection: &mut Connection,
        message: &Message,
        body: &[u8],
    ) -> Result<(), Failure> {
        let envelope = message.envelope();
        let send = pipelined::send(&mut connection.smtp, envelope, body, connection.pipelining);
        match timeout(self.timeout, send).await {
            Ok(Ok(())) => Ok(()),
            // A reply with a code is the server's answer: it says whether
            // it took the message. (lettre's `is_response` means a reply
            // that could not be parsed.)
            Ok(Err(failed)) if failed.error.status().is_some() => Err(Failure {
                replied: true,
                error: classify(&failed.error),
            }),
            // Lost with the whole message written: it may have been taken.
            Ok(Err(failed)) if failed.body_sent => Err(Failure {
                replied: true,
                error: RelayError::Unsure(mask_addresses(&failed.error.to_string())),
            }),
            Ok(Err(failed)) => Err(Failure {
                replied: false,
                error: classify(&failed.error),
            }),
            // The server may have taken the message and answered late: never
            // resend now, on this relay or another.
            Err(_) => Err(Failure {
                replied: true,
                error: RelayError::Unsure("the SMTP server did not answer in time".into()),
            }),
        }
    }

    async fn connect(&self) -> Result<Connection, RelayError> {
        let transient =
            |e: &dyn std::fmt::Display| RelayError::NotTaken(format!("connecting to SMTP: {e}"));
        let tcp = timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| transient(&"timed out"))?
        .map_err(|e| transient(&e))?;
        tcp.set_nodelay(true).map_err(|e| transient(&e))?;
        let setup = async {
            let mut connection =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
            if let Some(parameters) = &self.starttls {
                connection.starttls(parameters.clone(), &self.hello).await?;
            }
            // Asked before AUTH: an EHLO after it may end the session's login.
            let ehlo = connection.command(Ehlo::new(self.hello.clone())).await?;
            let pipelining = ehlo
                .message()
                .any(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"));
            if let Some(credentials) = &self.credentials {
                connection
                    .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await?;
            }
            Ok::<_, lettre::transport::smtp::Error>(Connection {
                smtp: connection,
                pipelining,
            })
        };
        match timeout(self.timeout, setup).await {
            Ok(Ok(connection)) => {
                let eight_bit = connection
                    .smtp
                    .server_info()
                    .supports_feature(Extension::EightBitMime);
                self.eight_bit_mime.store(eight_bit, Ordering::Relaxed);
                Ok(connection)
            }
            // Greeting, STARTTLS and login failures (a wrong password, a
            // blocklist) are about the setup, not the message: retry later.
            Ok(Err(error)) => Err(RelayError::NotTaken(mask_addresses(&error.to_string()))),
            Err(_) => Err(transient(&"timed out")),
        }
    }
}

/// Only a 5xx reply is permanent; refused and dropped connections, timeouts
/// and 4xx replies may pass later (E-21). So may the replies that refuse
/// our login rather than the message (RFC 4954 §6: 530 authentication
/// required, 534 mechanism too weak, 535 credentials invalid, 538
/// encryption required): once the operator mends the settings, the mail
/// goes. A timeout leaves it unsure whether the message was taken; every
/// other failure left it with us. Replies are masked (D-17).
pub(super) fn classify(error: &lettre::transport::smtp::Error) -> RelayError {
    let text = mask_addresses(&error.to_string());
    let refuses_login = error
        .status()
        .is_some_and(|code| matches!(u16::from(code), 530 | 534 | 535 | 538));
    if error.is_permanent() && !refuses_login {
        RelayError::Refused(text)
    } else if let Some(subject) = deferral_subject(&text).filter(|s| matches!(s, 2 | 7)) {
        RelayError::RecipientDeferred {
            text,
            policy: subject == 7,
        }
    } else if error.is_timeout() {
        RelayError::Unsure(text)
    } else {
        RelayError::NotTaken(text)
    }
}

/// The subject of a reply's enhanced status code of class 4 (RFC 3463:
/// 4.2.x mailbox, 4.7.x security or policy), if it has one.
fn deferral_subject(reply: &str) -> Option<u8> {
    reply
        .split(|c: char| c.is_whitespace() || c == ':' || c == '-' || c == '(')
        .find_map(|word| {
            let mut parts = word.split('.');
            let class = parts.next()?;
            let subject = parts.next()?.parse().ok()?;
            let detail = parts.next()?;
            let numeric = !detail.is_empty() && detail.bytes().all(|b| b.is_ascii_digit());
            (class == "4" && numeric && parts.next().is_none()).then_some(subject)
        })
}

#[cfg(test)]
mod tests {
    use super::deferral_subject;

    #[test]
    fn an_enhanced_code_of_class_4_gives_its_subject() {
        let policy = "transient error (421): 4.7.28 Our system has detected an unusual rate";
        assert_eq!(deferral_subject(policy), Some(7));
        let yahoo = "421-4.7.0 [TSS04] Messages temporarily deferred";
        assert_eq!(deferral_subject(yahoo), Some(7));
        assert_eq!(deferral_subject("452 4.2.2 mailbox full"), Some(2));
        let down = "transient error (421): 4.3.2 test-smtp is down";
        assert_eq!(deferral_subject(down), Some(3));
        assert_eq!(deferral_subject("451 4.7 try later"), None);
        assert_eq!(deferral_subject("450 mailbox 14.7.1 busy"), None);
        assert_eq!(deferral_subject("550 5.7.1 refused"), None);
    }
}
