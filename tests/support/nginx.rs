//! Debian's nginx as the reverse proxy in front of `serve`, with the
//! `server` block docs/deploy.md gives operators, its addresses and
//! certificate swapped for the test's own.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
};

const NGINX: &str = "/usr/sbin/nginx";
const DEPLOY_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy.md");

pub struct Nginx {
    /// https on 127.0.0.1 and [::1], this port.
    pub port: u16,
    /// The certificate nginx presents (for 127.0.0.1, ::1 and localhost).
    pub certificate_pem: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx forwarding to `upstream` (`127.0.0.1:port`); `None` (with a
    /// note) where it is not installed, unless `BROADSHEET_TEST_REQUIRE_NGINX`
    /// is set, as CI does.
    pub async fn start(upstream: &str) -> Option<Self> {
        if !super::installed(
            NGINX,
            "BROADSHEET_TEST_REQUIRE_NGINX",
            "apt-get install nginx-light",
            "reverse-proxy",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // Run as root, nginx's workers are `nobody`: they write their
        // temporary files here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let names = vec!["127.0.0.1".into(), "::1".into(), "localhost".into()];
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).unwrap();
        let root = dir.path();
        std::fs::write(root.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(root.join("key.pem"), signing_key.serialize_pem()).unwrap();
        let port = super::free_port().await;
        let server = documented_server_block()
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
            .replace("listen [::]:443 ssl;", &format!("listen [::1]:{port} ssl;"))
            .replace(
                "/etc/letsencrypt/live/news.example.com/fullchain.pem",
                &root.join("cert.pem").display().to_string(),
            )
            .replace(
                "/etc/letsencrypt/live/news.example.com/privkey.pem",
                &root.join("key.pem").display().to_string(),
            )
            .replace("http://127.0.0.1:8080", &format!("http://{upstream}"));
        assert!(
            server.contains(&format!("listen [::1]:{port} ssl;")) && server.contains(upstream),
            "docs/deploy.md's nginx block changed shape; update this test:\n{server}"
        );
        let temp = |name: &str| root.join(name).display().to_string();
        let config = format!(
            "daemon off;\npid {pid};\nerror_log {log};\nevents {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {body};\n proxy_temp_path {proxy};\n\
             fastcgi_temp_path {fastcgi};\n uwsgi_temp_path {uwsgi};\n scgi_temp_path {scgi};\n\
             {server}\n}}\n",
            pid = temp("nginx.pid"),
            log = temp("error.log"),
            body = temp("body"),
            proxy = temp("proxy"),
            fastcgi = temp("fastcgi"),
            uwsgi = temp("uwsgi"),
            scgi = temp("scgi"),
        );
        std::fs::write(root.join("nginx.conf"), config).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-e")
            .arg(root.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Self {
            port,
            certificate_pem: cert.pem(),
            child,
            dir,
        };
        for _ in 0..100 {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(nginx.dir.path().join("error.log"));
                panic!("nginx exited at start ({status}): {log:?}");
            }
            // Both: the port was found free on 127.0.0.1 only.
            let v4 = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
            let v6 = tokio::net::TcpStream::connect(("::1", port)).await;
            if v4.is_ok() && v6.is_ok() {
                return Some(nginx);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("nginx did not start on port {port}");
    }
}

/// The `server { … }` block of docs/deploy.md that serves https.
fn documented_server_block() -> String {
    let guide = std::fs::read_to_string(DEPLOY_GUIDE).unwrap();
    let block = guide
        .split("```nginx")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/deploy.md has an nginx block");
    let start = block
        .find("server {\n    listen 443")
        .expect("an https server block");
    block[start..].trim().to_owned()
}

impl Drop for Nginx {
    /// SIGTERM, which the master passes on to its workers; a SIGKILL would
    /// leave them holding the port.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().ok();
        self.child.wait().ok();
    }
}
