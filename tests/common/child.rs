//! The real binary as a child process, for tests that kill it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The real binary as a child process; killed (SIGKILL) when dropped, so
/// that no server outlives its test even when an assertion fails.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Every stdout line (JSON logs).
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `contest-backend serve` on `database_url`, once it listens.
    pub async fn start(database_url: &str, vars: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_contest-backend"))
            .env_clear()
            .env("APP_CONFIG_DIR", super::config_dir())
            .env("APP_ENV", "test")
            .env("DATABASE_URL", database_url)
            .env("JWT_SIGNING_KEYS", super::TEST_SIGNING_KEYS)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("APP__LOG__FORMAT", "json")
            .envs(vars.iter().copied())
            .arg("serve")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        // Drain stdout for the child's whole life: a full pipe would block
        // its logging, and so the server.
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            let echo = std::env::var("TEST_LOG").is_ok_and(|v| v == "1");
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if echo {
                    println!("[child] {line}");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = port_tx.send(v["port"].as_u64().unwrap());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            match port_rx.try_recv() {
                Ok(port) => break port,
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("the server exited before listening: {:?}", server.logs())
                }
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "the server did not listen within 30 s"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        server.base = format!("http://127.0.0.1:{port}");
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
