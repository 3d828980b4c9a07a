//! A TCP relay between the app and its PostgreSQL server that a test can
//! cut, as if the server had gone away (every open connection drops, new
//! ones are closed at once), and mend.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

pub struct Relay {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    open: AtomicBool,
    /// Cancelled by `cut`: every connection relayed so far ends.
    cut: Mutex<CancellationToken>,
}

impl Relay {
    /// Relays 127.0.0.1:<random> to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            cut: Mutex::new(CancellationToken::new()),
        });
        let accepting = shared.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.open.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let cut = accepting.cut.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Self { addr, shared }
    }

    /// The server "goes away": open connections drop, new ones are closed.
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        let mut cut = self.shared.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// The server is back.
    pub fn mend(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}
