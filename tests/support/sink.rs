//! Debian's postfix `smtp-sink` as an SMTP peer: a server that is not ours,
//! dumping each message it takes to a file of its own, so a test counts
//! what it received by envelope recipient.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
};

use super::free_port;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// `None` (with a note) where postfix is not installed, unless
    /// `BROADSHEET_TEST_REQUIRE_SMTP_SINK` is set, as CI does.
    pub async fn start() -> Option<Self> {
        if !super::installed(
            SMTP_SINK,
            "BROADSHEET_TEST_REQUIRE_SMTP_SINK",
            "apt-get install postfix",
            "smtp-sink",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // As root, smtp-sink must drop to another user, who writes the dumps.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port().await;
        let mut command = Command::new(SMTP_SINK);
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        command
            .arg("-d")
            .arg(dir.path().join("%M."))
            .arg(format!("127.0.0.1:{port}"))
            .arg("100")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Owned at once, so that a failed start still kills it (`Drop`).
        let mut sink = Self {
            port,
            child: command.spawn().unwrap(),
            dir,
        };
        for _ in 0..100 {
            // Exited (a port taken meanwhile, a folder it cannot write): say so.
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!("smtp-sink exited at start ({status})");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(sink);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("smtp-sink did not start on port {port}");
    }

    /// Every envelope recipient of every message taken, as `<address>`.
    pub fn recipients(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            found.extend(
                text.lines()
                    .take_while(|line| !line.is_empty())
                    .filter_map(|line| line.strip_prefix("X-Rcpt-Args: "))
                    .map(str::to_owned),
            );
        }
        found
    }

    /// Stops it at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}
