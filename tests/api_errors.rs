//! Every error class answers in the api.md schema, with the right status and
//! code, an `x-request-id`, and the security headers of security.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestApp, assert_error};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[actix_web::test]
async fn an_unknown_route_is_404_not_found() {
    let app = TestApp::spawn().await;
    let res = app.get("/v1/nothing-here").await;
    assert_error(res, 404, "NOT_FOUND").await;
}

#[actix_web::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .delete(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_error(res, 405, "METHOD_NOT_ALLOWED").await;

    let res = app.get("/v1/auth/apple").await;
    assert_eq!(res.headers()["allow"], "POST");
    assert_error(res, 405, "METHOD_NOT_ALLOWED").await;
}

#[actix_web::test]
async fn malformed_json_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/v1/auth/apple"))
        .header("content-type", "application/json")
        .body("{\"identity_token\": ")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "INVALID_REQUEST").await;
}

#[actix_web::test]
async fn an_unknown_field_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json(
            "/v1/auth/apple",
            &json!({"identity_token": "x", "is_admin": true}),
        )
        .await;
    let body = assert_error(res, 400, "INVALID_REQUEST").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is_admin")
    );
}

#[actix_web::test]
async fn a_wrong_type_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json("/v1/auth/apple", &json!({"identity_token": 42}))
        .await;
    assert_error(res, 400, "INVALID_REQUEST").await;
}

#[actix_web::test]
async fn a_broken_rule_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json("/v1/auth/apple", &json!({"identity_token": "  "}))
        .await;
    let body = assert_error(res, 422, "VALIDATION_FAILED").await;
    assert!(body["error"]["details"]["fields"]["identity_token"].is_string());
}

#[actix_web::test]
async fn a_bad_path_parameter_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .put(app.url("/v1/admin/users/not-a-uuid/roles"))
        .json(&json!({"roles": []}))
        .send()
        .await
        .unwrap();
    // The path is checked before authentication would be: either way the
    // answer is in the schema; with no token it must not be a 5xx.
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(65 * 1024);
    let res = app
        .post_json("/v1/auth/apple", &json!({ "identity_token": big }))
        .await;
    assert_error(res, 413, "PAYLOAD_TOO_LARGE").await;
}

/// Sends raw bytes and returns the status line and the rest of the answer.
async fn raw(app: &TestApp, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the server answers without waiting for the whole body")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[actix_web::test]
async fn a_declared_huge_body_is_refused_before_it_is_sent() {
    let app = TestApp::spawn().await;
    // 10 MiB announced, a few bytes sent: the answer must come at once.
    let answer = raw(
        &app,
        b"POST /v1/auth/apple HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10485760\r\n\r\n{\"identity_token\": \"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
    assert!(answer.contains("x-request-id"), "{answer}");
}

#[actix_web::test]
async fn a_chunked_body_over_the_limit_is_refused() {
    let app = TestApp::spawn().await;
    let mut request = b"POST /v1/auth/apple HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 8192];
    for _ in 0..9 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    let answer = raw(&app, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
}

#[actix_web::test]
async fn a_non_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/v1/auth/apple"))
        .header("content-type", "text/plain")
        .body("{\"identity_token\": \"x\"}")
        .send()
        .await
        .unwrap();
    assert_error(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;

    let res = app
        .client
        .post(app.url("/v1/auth/apple"))
        .body("{\"identity_token\": \"x\"}")
        .send()
        .await
        .unwrap();
    assert_error(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[actix_web::test]
async fn a_missing_token_is_401_unauthenticated() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/v1/me").await, 401, "UNAUTHENTICATED").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHENTICATED").await;
}

#[actix_web::test]
async fn a_sane_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "client-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-abc.123");

    let res = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "evil\tvalue with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "evil\tvalue with spaces");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let body = assert_error(res, 404, "NOT_FOUND").await;
    assert_eq!(body["error"]["request_id"], id.as_str());
}

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for res in [app.get("/health/live").await, app.get("/nope").await] {
        let h = res.headers();
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert!(h.contains_key("x-request-id"));
        assert!(!h.contains_key("access-control-allow-origin"), "no CORS");
        assert!(
            !h.contains_key("strict-transport-security"),
            "hsts off in test"
        );
    }
}

#[actix_web::test]
async fn hsts_is_sent_when_configured() {
    let app = TestApp::spawn_with(|vars| {
        vars.insert("APP__SERVER__HSTS".into(), "true".into());
    })
    .await;
    let res = app.get("/health/live").await;
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}
