//! A real IMAP server for the bounce-mailbox tests: Debian's Dovecot, run
//! by the test with a throwaway configuration in a temporary folder (its
//! own port, one user with a password, Maildir storage), stopped when the
//! test drops it.

use std::{path::Path, process::Command};

use broadsheet::config::{ImapConfig, ImapTls, Secret};
use tokio::net::TcpStream;

use super::free_port;

const DOVECOT: &str = "/usr/sbin/dovecot";
pub const USER: &str = "bounces";
const PASSWORD: &str = "a throwaway password";

pub struct ImapServer {
    pub port: u16,
    /// With TLS: the implicit-TLS port, and the server's certificate (PEM),
    /// which STARTTLS on `port` offers too.
    pub tls: Option<(u16, String)>,
    dir: tempfile::TempDir,
}

impl ImapServer {
    /// `None` (with a note) where Dovecot is not installed, unless
    /// `BROADSHEET_TEST_REQUIRE_IMAP` is set, as CI does.
    pub async fn start() -> Option<Self> {
        Self::start_with(false).await
    }

    /// As [`start`], also serving TLS (implicit and STARTTLS) with a
    /// certificate for 127.0.0.1 made now.
    pub async fn start_tls() -> Option<Self> {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Option<Self> {
        if !super::installed(
            DOVECOT,
            "BROADSHEET_TEST_REQUIRE_IMAP",
            "apt-get install dovecot-imapd",
            "IMAP",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port().await;
        let root = dir.path();
        for sub in ["run", "mail", "home"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let tls = match tls {
            true => Some((free_port().await, certificate(root))),
            false => None,
        };
        let tls_port = tls.as_ref().map(|(port, _)| *port);
        let conf = config(root, port, tls_port, &mail_user(root));
        std::fs::write(root.join("dovecot.conf"), conf).unwrap();
        let started = Command::new(DOVECOT)
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .status()
            .unwrap();
        assert!(started.success(), "dovecot did not start: {}", log(root));
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(Self { port, tls, dir });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("dovecot did not listen: {}", log(root));
    }

    /// `[bounces.imap]` for this server, reading INBOX.
    pub fn config(&self) -> ImapConfig {
        ImapConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: ImapTls::None,
            username: USER.into(),
            password: Secret::new(PASSWORD),
            ..ImapConfig::default()
        }
    }

    async fn session(&self) -> async_imap::Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    /// Delivers a message into INBOX, as the mail server would.
    pub async fn deliver(&self, raw: &[u8]) {
        let mut session = self.session().await;
        session.append("INBOX", None, None, raw).await.unwrap();
        session.logout().await.unwrap();
    }

    /// How many messages `folder` holds (0 if it does not exist).
    pub async fn count(&self, folder: &str) -> u32 {
        let mut session = self.session().await;
        let exists = match session.status(folder, "(MESSAGES)").await {
            Ok(mailbox) => mailbox.exists,
            Err(_) => 0,
        };
        session.logout().await.unwrap();
        exists
    }
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        let _ = Command::new(DOVECOT)
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .arg("stop")
            .status();
    }
}

/// Who owns the mail: Dovecot will not give mail to root, so as root the
/// `dovecot` user, which gets the folders; otherwise whoever runs the test.
fn mail_user(root: &Path) -> String {
    let running_as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    if running_as_root {
        for sub in ["mail", "home"] {
            Command::new("chown")
                .args(["-R", "dovecot:dovecot"])
                .arg(root.join(sub))
                .status()
                .unwrap();
        }
        "dovecot".into()
    } else {
        let out = Command::new("id").arg("-un").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A self-signed certificate for 127.0.0.1, written for Dovecot (readable
/// by its login processes); returns it as PEM.
fn certificate(root: &Path) -> String {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).unwrap();
    std::fs::write(root.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(root.join("key.pem"), signing_key.serialize_pem()).unwrap();
    cert.pem()
}

fn config(root: &Path, port: u16, tls_port: Option<u16>, mail_user: &str) -> String {
    let (ssl, imaps_port) = match tls_port {
        Some(tls_port) => (
            format!(
                "ssl = yes\nssl_cert = <{0}/cert.pem\nssl_key = <{0}/key.pem\n",
                root.display()
            ),
            tls_port,
        ),
        None => ("ssl = no\n".to_owned(), 0),
    };
    let root = root.display();
    // Not root: every Dovecot process runs as this user.
    let own_users = if mail_user == "dovecot" {
        String::new()
    } else {
        format!("default_internal_user = {mail_user}\ndefault_login_user = {mail_user}\n")
    };
    format!(
        "base_dir = {root}/run
state_dir = {root}/run
log_path = {root}/log
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
{own_users}passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={root}/home/%u mail=maildir:{root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"
    )
}

fn log(root: &Path) -> String {
    std::fs::read_to_string(root.join("log")).unwrap_or_default()
}
