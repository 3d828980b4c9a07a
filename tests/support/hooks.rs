//! A webhook receiver for the tests: a real HTTP server on loopback that
//! records each request and answers as the test tells it (up, down with a
//! 503, or hanging), and checks Standard Webhooks signatures itself.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    pub json: Value,
    /// Whether it was answered 2xx.
    pub accepted: bool,
}

impl Hook {
    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    /// Whether it carries a valid `v1` signature by `secret` (`whsec_…`),
    /// computed here as the specification says, not by the crate.
    pub fn signed_by(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("a key");
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Every request answered 503.
    Down,
    /// Requests are read and never answered.
    Hanging,
}

#[derive(Default)]
struct Log {
    mode: Option<Mode>,
    hooks: Vec<Hook>,
    in_flight: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log {
            mode: Some(mode),
            ..Log::default()
        }));
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.log.lock().unwrap().mode = Some(mode);
    }

    /// Every request received, in order.
    pub fn hooks(&self) -> Vec<Hook> {
        self.log.lock().unwrap().hooks.clone()
    }

    /// The requests answered 2xx, in order.
    pub fn accepted(&self) -> Vec<Hook> {
        self.hooks().into_iter().filter(|h| h.accepted).collect()
    }

    pub fn in_flight(&self) -> usize {
        self.log.lock().unwrap().in_flight
    }
}

async fn receive(
    State(log): State<Arc<Mutex<Log>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body = String::from_utf8(body.to_vec()).unwrap();
    let mode = {
        let mut log = log.lock().unwrap();
        let mode = log.mode.unwrap_or(Mode::Up);
        log.hooks.push(Hook {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp").parse().unwrap_or(0),
            signature: header("webhook-signature"),
            json: serde_json::from_str(&body).unwrap_or(Value::Null),
            body,
            accepted: mode == Mode::Up,
        });
        if mode == Mode::Hanging {
            log.in_flight += 1;
        }
        mode
    };
    match mode {
        Mode::Up => StatusCode::NO_CONTENT,
        Mode::Down => StatusCode::SERVICE_UNAVAILABLE,
        Mode::Hanging => std::future::pending().await,
    }
}
