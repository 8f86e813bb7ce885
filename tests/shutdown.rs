//! SIGTERM stops the server gracefully: it stops accepting, finishes what
//! is in flight, and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[actix_web::test]
async fn sigterm_stops_the_server_with_exit_code_0() {
    let db = common::TestDb::create().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_contest-backend"))
        .env_clear()
        .env("APP_CONFIG_DIR", common::config_dir())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .env("APP__LOG__FORMAT", "json")
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("the server logs until it listens")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["message"] == "listening" {
            break v["port"].as_u64().unwrap();
        }
    };
    contest_backend::auth::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("the server exits within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
    assert!(
        client.get(&url).send().await.is_err(),
        "no longer accepting"
    );
}
