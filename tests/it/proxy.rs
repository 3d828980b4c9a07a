//! `serve` behind Debian's nginx, configured as docs/deploy.md tells
//! operators, over https with a certificate made here: secure cookies, the
//! client's address taken from the proxy (IPv4 and IPv6, a forged header
//! ignored), one-click unsubscribe and the console, all through it.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::process::Stdio;

use broadsheet::{domain::LinkPurpose, editors::Role};

use crate::{
    cli::{cli_for, stop_with_sigterm, wait_until_ready},
    support::{Backend, Browser, TestApp, free_port, nginx::Nginx},
};

storage_tests!(serve_behind_nginx_over_https_takes_the_client_from_the_proxy);

async fn serve_behind_nginx_over_https_takes_the_client_from_the_proxy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let port = free_port().await;
    let upstream = format!("127.0.0.1:{port}");
    let Some(nginx) = Nginx::start(&upstream).await else {
        return;
    };
    let public = format!("https://127.0.0.1:{}", nginx.port);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"{upstream}\"\nbase_url = \"{public}\"\n\
             trusted_proxies = [\"127.0.0.1\"]\n[privacy]\nip_mode = \"full\"\n"
        ),
    )
    .unwrap();
    let mut server = Served(
        cli_for(&app)
            .env_remove("BROADSHEET_SERVER__BASE_URL")
            .args(["serve", "--role", "web", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until_ready(&reqwest::Client::new(), &format!("http://{upstream}")).await;

    // From 127.0.0.2, claiming to be 203.0.113.9: nginx appends the real
    // address, which is the one believed.
    let reader = browser(&nginx, &public, Some("127.0.0.2"));
    let form = reader.get("/subscribe").await;
    assert_eq!(form.status(), 200);
    assert!(
        form.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let csrf_cookie = set_cookie(&form, "__Host-bs_csrf=");
    assert!(csrf_cookie.contains("Secure"), "{csrf_cookie}");
    assert_eq!(
        reader.sign_up("proxied@example.com", true).await.status(),
        200
    );
    assert_eq!(consent_ip(&app, "proxied@example.com").await, "127.0.0.2");

    let reader6 = browser(&nginx, &format!("https://[::1]:{}", nginx.port), None);
    assert_eq!(
        reader6.sign_up("proxied6@example.com", true).await.status(),
        200
    );
    assert_eq!(consent_ip(&app, "proxied6@example.com").await, "::1");

    // One-click unsubscribe, as a mailbox provider posts it: no cookie.
    app.confirmed_reader("leaving@example.com", true).await;
    let link = app
        .reader_link("leaving@example.com", LinkPurpose::Unsubscribe)
        .await;
    let provider = browser(&nginx, &public, None);
    let unsubscribed = provider
        .client
        .post(provider.url(&link))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(unsubscribed.status(), 200);
    assert_eq!(
        app.text(&format!(
            "SELECT action FROM consent_events WHERE subject = '{}' \
             AND purpose = 'newsletter' ORDER BY id DESC LIMIT 1",
            app.subscriber_id("leaving@example.com").await
        ))
        .await
        .as_deref(),
        Some("withdrawn")
    );

    // The console: sign in and see the dashboard, over https only.
    app.editor("desk@example.com", Role::Admin, "correct horse battery")
        .await;
    let editor = browser(&nginx, &public, None);
    let signed_in = editor
        .submit(
            "/admin/login",
            "/admin/login",
            &[
                ("email", "desk@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    assert!(set_cookie(&signed_in, "__Host-bs_editor=").contains("Secure"));
    let dashboard = editor.get("/admin").await;
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("Dashboard"));

    stop_with_sigterm(&mut server.0);
    drop(nginx);
    app.stop().await;
}

/// `serve`, killed if the test fails before stopping it: left running, it
/// would hold its port and write to a database slot the next test empties.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

/// A client trusting nginx's certificate, from `local` if given, sending
/// a forged `X-Forwarded-For` that must not be believed.
fn browser(nginx: &Nginx, base_url: &str, local: Option<&str>) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    let certificate = reqwest::Certificate::from_pem(nginx.certificate_pem.as_bytes()).unwrap();
    Browser::with(
        base_url,
        reqwest::Client::builder()
            .add_root_certificate(certificate)
            .local_address(local.map(|ip| ip.parse().unwrap()))
            .default_headers(headers),
    )
}

fn set_cookie(response: &reqwest::Response, prefix: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|cookie| cookie.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie"))
}

async fn consent_ip(app: &TestApp, email: &str) -> String {
    let id = app.subscriber_id(email).await;
    app.text(&format!(
        "SELECT ip FROM consent_events WHERE subject = '{id}' AND purpose = 'newsletter'"
    ))
    .await
    .unwrap()
}
