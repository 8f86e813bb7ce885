//! A TCP forwarder the tests can cut and restore, to make a real peer
//! (PostgreSQL, the fake Stripe) unreachable and bring it back.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub struct Switch {
    up: AtomicBool,
    cut: Notify,
}

impl Switch {
    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Forwards 127.0.0.1:<port> to `target` ("host:port").
pub async fn spawn(target: String) -> (u16, Arc<Switch>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let switch = Arc::new(Switch {
        up: AtomicBool::new(true),
        cut: Notify::new(),
    });
    let sw = switch.clone();
    actix_web::rt::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if !sw.up.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let target = target.clone();
            let sw = sw.clone();
            actix_web::rt::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = sw.cut.notified() => {}
                }
            });
        }
    });
    (port, switch)
}
