//! A small SMTP server that records what it receives, and can be told to
//! refuse recipients or messages with a given reply.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub data: Vec<u8>,
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
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind SMTP port");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Self { addr, shared, task }
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

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(session(stream, shared.clone()));
    }
}

async fn session(stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut recipients = Vec::new();
    if shared.lock().expect("lock").is_down() {
        let _ = write.write_all(b"421 4.3.2 test-smtp is down\r\n").await;
        return;
    }
    if write.write_all(b"220 test-smtp ESMTP\r\n").await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_ascii_uppercase();
        let seven_bit = shared.lock().expect("lock").without_8bitmime;
        let reply: String = if command.starts_with("EHLO") {
            if seven_bit {
                "250-test-smtp\r\n250 SMTPUTF8\r\n".into()
            } else {
                "250-test-smtp\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
            }
        } else if seven_bit && command.contains("BODY=8BITMIME") {
            "555 5.5.4 BODY=8BITMIME is not offered here\r\n".into()
        } else if command.starts_with("MAIL FROM") && shared.lock().expect("lock").is_down() {
            let _ = write
                .write_all(b"421 4.3.2 test-smtp is going down\r\n")
                .await;
            return;
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") {
            recipients.clear();
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
        } else if command == "DATA" {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = Vec::new();
            let mut eight_bit = false;
            let fault = shared.lock().expect("lock").data_fault;
            loop {
                let mut chunk = String::new();
                match lines.read_line(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if matches!(fault, Some(DataFault::Drop)) && data.len() > 100 {
                    return; // the connection drops with the message half sent
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
                    return;
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
                        return;
                    }
                    continue;
                }
                Some(DataFault::Stall) => std::future::pending::<()>().await,
                Some(DataFault::Drop) | None => {}
            }
            let delay = shared.lock().expect("lock").data_delay;
            tokio::time::sleep(delay).await;
            shared.lock().expect("lock").received.push(ReceivedMail {
                to: std::mem::take(&mut recipients),
                data,
            });
            "250 queued\r\n".into()
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if command == "RSET" || command == "NOOP" {
            "250 OK\r\n".into()
        } else {
            "502 not implemented\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

impl Shared {
    fn is_down(&self) -> bool {
        self.down_after
            .is_some_and(|messages| self.received.len() >= messages)
    }
}
