//! A small SMTP server that records what it receives, and can be told to
//! refuse recipients or messages with a given reply, to speak TLS
//! (STARTTLS or implicit) and to require AUTH.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use base64::Engine as _;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, pki_types::PrivateKeyDer},
};

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (MAIL FROM), without its angle brackets.
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The user the client authenticated as, if it did.
    pub user: Option<String>,
    /// Whether the client sent what followed MAIL FROM (its RCPT and
    /// DATA) before the server had answered it: RFC 2920 pipelining.
    pub pipelined: bool,
}

impl ReceivedMail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parseable message")
    }

    /// The decoded text part.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .expect("a text part")
            .into_owned()
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }
}

/// How the server answers `RCPT TO`.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Accept,
    Refuse(&'static str),
}

/// What the server does once a message's data has arrived, instead of
/// keeping it and answering 250.
#[derive(Debug, Clone, Copy)]
pub enum DataFault {
    /// Answers this line (a 4xx or 5xx) and keeps nothing.
    Reply(&'static str),
    /// Drops the connection halfway through the data, without a word.
    Drop,
    /// Never answers.
    Stall,
}

#[derive(Default)]
struct Shared {
    received: Vec<ReceivedMail>,
    rcpt_reply: Option<&'static str>,
    /// Recipients containing the first string get the second as their
    /// RCPT reply.
    refused_recipients: Vec<(&'static str, &'static str)>,
    data_fault: Option<DataFault>,
    /// After this many messages the server is "down": new connections get
    /// 421 at the greeting, open ones 421 at their next MAIL.
    down_after: Option<usize>,
    /// How long the server takes to accept a message's data.
    data_delay: std::time::Duration,
    /// Whether EHLO leaves out 8BITMIME; such a server refuses 8-bit data.
    without_8bitmime: bool,
    /// Whether EHLO leaves out PIPELINING (RFC 2920).
    without_pipelining: bool,
    /// The only user and password AUTH accepts; with them set, MAIL needs AUTH.
    credentials: Option<(String, String)>,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    /// The server's certificate, PEM, when it speaks TLS.
    pub certificate: Option<String>,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

/// Whether and how the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    None,
    /// Offers STARTTLS, and AUTH only after it (RFC 3207, RFC 4954 §4).
    Starttls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        Self::listen(port, ServerTls::None).await
    }

    /// A server speaking TLS on a self-signed certificate for 127.0.0.1.
    pub async fn start_tls(tls: ServerTls) -> Self {
        Self::listen(0, tls).await
    }

    async fn listen(port: u16, tls: ServerTls) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind SMTP port");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (certificate, acceptor) = match tls {
            ServerTls::None => (None, None),
            ServerTls::Starttls | ServerTls::Implicit => {
                let (pem, acceptor) = self_signed();
                (Some(pem), Some(acceptor))
            }
        };
        let task = tokio::spawn(accept_loop(listener, shared.clone(), tls, acceptor));
        Self {
            addr,
            certificate,
            shared,
            task,
        }
    }

    /// From now on MAIL needs AUTH (PLAIN or LOGIN) as this user.
    pub fn require_auth(&self, user: &str, password: &str) {
        self.shared.lock().expect("lock").credentials = Some((user.into(), password.into()));
    }

    /// What `RCPT TO` answers from now on.
    pub fn set_rcpt_reply(&self, reply: Reply) {
        self.shared.lock().expect("lock").rcpt_reply = match reply {
            Reply::Accept => None,
            Reply::Refuse(line) => Some(line),
        };
    }

    /// Refuses recipients whose address contains `part` with `reply`.
    pub fn refuse_recipients(&self, part: &'static str, reply: &'static str) {
        self.shared
            .lock()
            .expect("lock")
            .refused_recipients
            .push((part, reply));
    }

    /// Accepts every recipient again (undoes `refuse_recipients`).
    pub fn accept_all_recipients(&self) {
        self.shared.lock().expect("lock").refused_recipients.clear();
    }

    /// What happens to each message's data from now on (`None`: kept).
    pub fn set_data_fault(&self, fault: Option<DataFault>) {
        self.shared.lock().expect("lock").data_fault = fault;
    }

    /// Goes down once `messages` have been received in all (`None`: up again).
    pub fn set_down_after(&self, messages: Option<usize>) {
        self.shared.lock().expect("lock").down_after = messages;
    }

    /// Makes every message take `delay` to be accepted, like a slow server.
    pub fn set_data_delay(&self, delay: std::time::Duration) {
        self.shared.lock().expect("lock").data_delay = delay;
    }

    /// Whether the server offers 8BITMIME (it does unless told otherwise).
    pub fn set_8bitmime(&self, offered: bool) {
        self.shared.lock().expect("lock").without_8bitmime = !offered;
    }

    /// Whether the server offers PIPELINING (it does unless told otherwise).
    pub fn set_pipelining(&self, offered: bool) {
        self.shared.lock().expect("lock").without_pipelining = !offered;
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.lock().expect("lock").received.clone()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A port on which nothing listens (yet).
pub async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A certificate for 127.0.0.1 and localhost, made now, and an acceptor for it.
fn self_signed() -> (String, TlsAcceptor) {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).expect("a certificate");
    let key = PrivateKeyDer::try_from(signing_key.serialize_der()).expect("a PKCS#8 key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("a server config");
    (cert.pem(), TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Mutex<Shared>>,
    tls: ServerTls,
    acceptor: Option<TlsAcceptor>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(session(stream, shared.clone(), tls, acceptor.clone()));
    }
}

async fn session(
    stream: TcpStream,
    shared: Arc<Mutex<Shared>>,
    tls: ServerTls,
    acceptor: Option<TlsAcceptor>,
) {
    match (tls, acceptor) {
        (ServerTls::Implicit, Some(acceptor)) => {
            if let Ok(stream) = acceptor.accept(stream).await {
                converse(stream, &shared, Stage::Greet { starttls: false }, true).await;
            }
        }
        (ServerTls::Starttls, Some(acceptor)) => {
            let plain = converse(stream, &shared, Stage::Greet { starttls: true }, false).await;
            if let Some(plain) = plain
                && let Ok(stream) = acceptor.accept(plain).await
            {
                // RFC 3207 §4.2: no greeting; the client starts over with EHLO.
                converse(stream, &shared, Stage::AfterStarttls, true).await;
            }
        }
        _ => {
            converse(stream, &shared, Stage::Greet { starttls: false }, false).await;
        }
    }
}

/// Where a conversation starts.
#[derive(Clone, Copy)]
enum Stage {
    /// A new connection: greet, and offer STARTTLS or not.
    Greet { starttls: bool },
    /// Just upgraded to TLS.
    AfterStarttls,
}

/// One SMTP conversation on `stream`. Returns the stream when the client
/// asked for STARTTLS and was told to go ahead.
async fn converse<S>(
    stream: S,
    shared: &Arc<Mutex<Shared>>,
    stage: Stage,
    secure: bool,
) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read);
    let mut recipients = Vec::new();
    let mut sender = String::new();
    let mut pipelined = false;
    let mut user: Option<String> = None;
    let offers_starttls = matches!(stage, Stage::Greet { starttls: true });
    if let Stage::Greet { .. } = stage {
        if shared.lock().expect("lock").is_down() {
            let _ = write.write_all(b"421 4.3.2 test-smtp is down\r\n").await;
            return None;
        }
        if write.write_all(b"220 test-smtp ESMTP\r\n").await.is_err() {
            return None;
        }
    }
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let command = line.trim_end().to_ascii_uppercase();
        let (seven_bit, credentials, offers_pipelining) = {
            let shared = shared.lock().expect("lock");
            let offers_pipelining = !shared.without_pipelining;
            (
                shared.without_8bitmime,
                shared.credentials.clone(),
                offers_pipelining,
            )
        };
        // AUTH is offered only where a password would not travel in clear.
        let offers_auth = credentials.is_some() && (secure || !offers_starttls);
        let reply: String = if command.starts_with("EHLO") {
            let mut reply = String::from("250-test-smtp\r\n");
            if !seven_bit {
                reply.push_str("250-8BITMIME\r\n");
            }
            if offers_pipelining {
                reply.push_str("250-PIPELINING\r\n");
            }
            if offers_starttls {
                reply.push_str("250-STARTTLS\r\n");
            }
            if offers_auth {
                reply.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            reply.push_str("250 SMTPUTF8\r\n");
            reply
        } else if command == "STARTTLS" && offers_starttls {
            let _ = write.write_all(b"220 2.0.0 ready to start TLS\r\n").await;
            return Some(lines.into_inner().unsplit(write));
        } else if command.starts_with("AUTH ") && offers_auth {
            let (expected_user, expected_password) = credentials.expect("offered");
            let given = authenticate(&command, &line, &mut lines, &mut write).await?;
            if given == (expected_user.clone(), expected_password) {
                user = Some(expected_user);
                "235 2.7.0 authenticated\r\n".into()
            } else {
                "535 5.7.8 authentication failed\r\n".into()
            }
        } else if seven_bit && command.contains("BODY=8BITMIME") {
            "555 5.5.4 BODY=8BITMIME is not offered here\r\n".into()
        } else if command.starts_with("MAIL FROM") && credentials.is_some() && user.is_none() {
            "530 5.7.0 authentication required\r\n".into()
        } else if command.starts_with("MAIL FROM") && shared.lock().expect("lock").is_down() {
            let _ = write
                .write_all(b"421 4.3.2 test-smtp is going down\r\n")
                .await;
            return None;
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") {
            recipients.clear();
            if command.starts_with("MAIL FROM") {
                // Read ahead of our reply: the client did not wait for it.
                pipelined = !lines.buffer().is_empty();
                // The original line: the command was upper-cased.
                let path = line.trim_end()[10..].trim();
                let path = path.split_whitespace().next().unwrap_or("");
                sender = path
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned();
            }
            "250 OK\r\n".into()
        } else if command.starts_with("RCPT TO") {
            let address = command[8..].trim().to_ascii_lowercase();
            let refusal = {
                let shared = shared.lock().expect("lock");
                shared.rcpt_reply.or_else(|| {
                    shared
                        .refused_recipients
                        .iter()
                        .find(|(part, _)| address.contains(part))
                        .map(|(_, reply)| *reply)
                })
            };
            match refusal {
                Some(refusal) => format!("{refusal}\r\n"),
                None => {
                    recipients.push(line.trim_end()[8..].trim().to_owned());
                    "250 OK\r\n".into()
                }
            }
        } else if command == "DATA" && recipients.is_empty() {
            // RFC 2920 §3.1: a pipelining client may send DATA after its
            // only RCPT was refused; no message may follow.
            "554 5.5.1 no valid recipients\r\n".into()
        } else if command == "DATA" {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return None;
            }
            let mut data = Vec::new();
            let mut eight_bit = false;
            let fault = shared.lock().expect("lock").data_fault;
            loop {
                let mut chunk = String::new();
                match lines.read_line(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
                if matches!(fault, Some(DataFault::Drop)) && data.len() > 100 {
                    return None; // the connection drops with the message half sent
                }
                if chunk == ".\r\n" {
                    break;
                }
                // RFC 5321 §4.5.2: undo dot-stuffing.
                let chunk = chunk.strip_prefix('.').unwrap_or(&chunk);
                eight_bit |= !chunk.is_ascii();
                data.extend_from_slice(chunk.as_bytes());
            }
            if seven_bit && eight_bit {
                let refusal = b"554 5.6.0 8-bit data without 8BITMIME\r\n";
                if write.write_all(refusal).await.is_err() {
                    return None;
                }
                continue;
            }
            match fault {
                Some(DataFault::Reply(line)) => {
                    recipients.clear();
                    if write
                        .write_all(format!("{line}\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return None;
                    }
                    continue;
                }
                Some(DataFault::Stall) => std::future::pending::<()>().await,
                Some(DataFault::Drop) | None => {}
            }
            let delay = shared.lock().expect("lock").data_delay;
            tokio::time::sleep(delay).await;
            shared.lock().expect("lock").received.push(ReceivedMail {
                from: sender.clone(),
                to: std::mem::take(&mut recipients),
                data,
                tls: secure,
                user: user.clone(),
                pipelined,
            });
            "250 queued\r\n".into()
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return None;
        } else if command == "RSET" || command == "NOOP" {
            "250 OK\r\n".into()
        } else {
            "502 not implemented\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return None;
        }
    }
}

/// The user and password of `AUTH PLAIN <initial response>` or of the
/// exchange `AUTH LOGIN` starts (RFC 4616; the LOGIN draft). `None` if the
/// connection went away.
async fn authenticate<R, W>(
    command: &str,
    line: &str,
    lines: &mut BufReader<R>,
    write: &mut W,
) -> Option<(String, String)>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    let mut ask = async |challenge: &[u8]| {
        write.write_all(challenge).await.ok()?;
        let mut answer = String::new();
        match lines.read_line(&mut answer).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(decode(&answer)),
        }
    };
    if command.starts_with("AUTH PLAIN") {
        // The initial response keeps its case: it is base64.
        let response = match line.trim_end().get("AUTH PLAIN".len()..).map(str::trim) {
            Some(initial) if !initial.is_empty() => decode(initial),
            _ => ask(b"334 \r\n").await?,
        };
        let mut parts = response.split('\0').skip(1);
        let user = parts.next().unwrap_or_default().to_owned();
        Some((user, parts.next().unwrap_or_default().to_owned()))
    } else {
        let user = ask(b"334 VXNlcm5hbWU6\r\n").await?;
        let password = ask(b"334 UGFzc3dvcmQ6\r\n").await?;
        Some((user, password))
    }
}

impl Shared {
    fn is_down(&self) -> bool {
        self.down_after
            .is_some_and(|messages| self.received.len() >= messages)
    }
}
