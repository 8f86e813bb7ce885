//! `/health/live` and `/health/ready`, including the database going away
//! and coming back without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, assert_error};

#[actix_web::test]
async fn live_answers_ok() {
    let app = TestApp::spawn().await;
    let res = app.get("/health/live").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[actix_web::test]
async fn ready_answers_ok_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn ready_is_503_while_migrations_are_pending() {
    let app = TestApp::spawn().await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&app.db)
        .await
        .unwrap();
    let res = app.get("/health/ready").await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 503, "SERVICE_UNAVAILABLE").await;
}

#[actix_web::test]
async fn ready_is_503_while_the_database_is_unreachable_and_200_when_it_returns() {
    let db = url::Url::parse(&common::admin_url()).unwrap();
    let target = format!("{}:{}", db.host_str().unwrap(), db.port().unwrap_or(5432));
    let (proxy_port, switch) = common::proxy::spawn(target).await;

    let app = TestApp::spawn_with(|vars| {
        let mut url = url::Url::parse(&vars["DATABASE_URL"]).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(proxy_port)).unwrap();
        vars.insert("DATABASE_URL".into(), url.to_string());
        vars.insert("APP__DATABASE__READY_TIMEOUT_MS".into(), "500".into());
        vars.insert("APP__DATABASE__ACQUIRE_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    switch.cut();
    let res = app.get("/health/ready").await;
    assert!(res.headers().contains_key("retry-after"));
    let body = assert_error(res, 503, "SERVICE_UNAVAILABLE").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("127.0.0.1"), "no internals: {message}");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health/live").await.status(), 200);

    switch.restore();
    let mut status = 0;
    for _ in 0..20 {
        status = app.get("/health/ready").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200, "ready again once the database is back");
}
