//! Hostile input: whatever a client sends, the service does not crash, does
//! not half-write, does not answer `5xx` for the client's mistake, and
//! `/health/live` keeps answering `200` afterwards (checked at the end of
//! every test). Only 127.0.0.1 traffic; every loop is bounded in count and
//! time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{AppleApp, TestApp, assert_error, contest_body, mint_users};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

const MIB: usize = 1024 * 1024;

/// Strings that would break a query built by concatenation.
const SQL_INJECTIONS: &[&str] = &[
    "'; DROP TABLE contest; --",
    "' OR '1'='1",
    "' OR 1=1 --",
    "\"; DROP TABLE app_user; --",
    "Robert'); DROP TABLE contest;--",
    "1); DELETE FROM contest; --",
    "' UNION SELECT id, title FROM contest --",
    "'; SELECT pg_sleep(10); --",
    "$$; TRUNCATE contest; $$",
    "%' OR title LIKE '%",
    "\\'; DROP TABLE contest; --",
];

// ---------------------------------------------------------------------------
// Helpers

/// A user with the `organizer` role; returns its access token.
async fn organizer(app: &TestApp) -> String {
    let (id, token) = mint_users(app, 1).await.pop().unwrap();
    sqlx::query("UPDATE app_user SET roles = $2 WHERE id = $1")
        .bind(id)
        .bind(vec!["organizer".to_owned()])
        .execute(&app.db)
        .await
        .unwrap();
    token
}

/// `/health/live` answers `200 {"status": "ok"}` within 5 s.
async fn still_alive(app: &TestApp) {
    let res = tokio::time::timeout(
        Duration::from_secs(5),
        app.client.get(app.url("/health/live")).send(),
    )
    .await
    .expect("/health/live answers within 5 s")
    .expect("/health/live answers");
    assert_eq!(res.status(), 200, "/health/live");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

/// Rows in `contest`.
async fn contest_rows(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM contest").await
}

/// The status of a raw HTTP answer, `None` when the connection was closed
/// without one.
fn status_of(answer: &str) -> Option<u16> {
    answer
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|s| s.parse().ok())
}

/// Whether `buf` holds a whole response (head and `content-length` body).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => buf.len() >= end + 4 + n,
        None => false,
    }
}

/// Reads one answer: until it is complete, the peer closes (or resets), or
/// `deadline` passes. `first_byte` is set when the first byte arrives.
async fn read_answer(
    rd: &mut OwnedReadHalf,
    deadline: Instant,
    first_byte: Option<&AtomicBool>,
) -> String {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    while !complete(&buf) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(flag) = first_byte {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Sends raw bytes on a new connection and returns the answer (empty when
/// the server closed without one).
async fn raw(app: &TestApp, request: &[u8]) -> String {
    let stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    // The server may answer and close before it has read everything.
    let _ = wr.write_all(request).await;
    read_answer(&mut rd, Instant::now() + Duration::from_secs(5), None).await
}

/// A raw answer that is not a `5xx`: a `4xx`/`2xx` status line, or a
/// closed connection. Returns the status.
fn no_5xx(what: &str, answer: &str) -> Option<u16> {
    let status = status_of(answer);
    if let Some(s) = status {
        assert!(s < 500, "{what}: {answer}");
    } else {
        assert!(answer.is_empty(), "{what}: not HTTP: {answer}");
    }
    status
}

/// Streams a chunked body of up to `total` bytes after `head` (16 KiB
/// chunks, a millisecond apart), reading at the same time. Returns the
/// answer and how many body bytes had been sent when it began to arrive.
async fn stream_chunked(app: &TestApp, head: String, total: usize) -> (String, usize) {
    let stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicBool::new(false));
    let writer = {
        let (sent, answered) = (sent.clone(), answered.clone());
        tokio::spawn(async move {
            if wr.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = 16 * 1024;
            let mut frame = format!("{chunk:x}\r\n").into_bytes();
            frame.extend(std::iter::repeat_n(b'x', chunk));
            frame.extend_from_slice(b"\r\n");
            while sent.load(Ordering::SeqCst) < total && !answered.load(Ordering::SeqCst) {
                if wr.write_all(&frame).await.is_err() {
                    return;
                }
                sent.fetch_add(chunk, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if !answered.load(Ordering::SeqCst) {
                let _ = wr.write_all(b"0\r\n\r\n").await;
            }
            // Hold the write side open until the test is done with it.
            tokio::time::sleep(Duration::from_secs(2)).await;
        })
    };
    // The first byte of the answer marks the moment to compare with `sent`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first = [0u8; 1];
    let got = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        rd.read(&mut first),
    )
    .await;
    let at_answer = sent.load(Ordering::SeqCst);
    answered.store(true, Ordering::SeqCst);
    let answer = match got {
        Ok(Ok(1)) => {
            let rest = read_answer(&mut rd, deadline, None).await;
            format!("{}{rest}", first[0] as char)
        }
        _ => String::new(),
    };
    writer.abort();
    (answer, at_answer)
}

/// `contest_body()` with `field` set to the raw JSON text `value`.
fn body_with(field: &str, value: &str) -> String {
    let mut body = contest_body();
    body[field] = json!("__RAW__");
    body.to_string().replace("\"__RAW__\"", value)
}

/// `POST /v1/contests` with a raw JSON body.
async fn create_raw(
    app: &TestApp,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.authed(Method::POST, "/v1/contests", token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `PATCH /v1/contests/{id}` with a raw JSON body.
async fn patch_raw(app: &TestApp, token: &str, id: &str, body: String) -> reqwest::Response {
    app.authed(Method::PATCH, &format!("/v1/contests/{id}"), token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// What api.md says a bad number is.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Not the field's type: `400 INVALID_REQUEST`.
    Type,
    /// The right type breaking a rule: `422 VALIDATION_FAILED` naming it.
    Rule,
    /// Beyond the type's range: either is defensible.
    Either,
}

async fn assert_refused(res: reqwest::Response, field: &str, raw: &str, expect: Expect) {
    let status = res.status().as_u16();
    let what = format!("{field} = {raw}");
    match (expect, status) {
        (Expect::Type | Expect::Either, 400) => {
            assert_error(res, 400, "INVALID_REQUEST").await;
        }
        (Expect::Rule | Expect::Either, 422) => {
            let body = assert_error(res, 422, "VALIDATION_FAILED").await;
            assert!(
                body["error"]["details"]["fields"][field].is_string(),
                "{what}: the field is named: {body}"
            );
        }
        _ => panic!(
            "{what}: expected {expect:?}, got {status}: {}",
            res.text().await.unwrap_or_default()
        ),
    }
}

/// The soft limit on open files of this process (the server's sockets count
/// against it too: it runs in this process).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

// ---------------------------------------------------------------------------
// 1. Ten mebibytes

#[actix_web::test]
async fn a_ten_mib_body_to_a_json_route_is_413_payload_too_large() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;
    let mut body = br#"{"title": ""#.to_vec();
    body.resize(10 * MIB, b'x');
    let res = create_raw(&app, &token, body).await;
    assert_error(res, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(contest_rows(&app).await, 0, "nothing written");
    still_alive(&app).await;
}

#[actix_web::test]
async fn a_ten_mib_body_to_the_stripe_webhook_is_413_payload_too_large() {
    let app = TestApp::spawn().await;
    let mut body = br#"{"id": "evt_1", "type": "charge.refunded", "data": {"object": ""#.to_vec();
    body.resize(10 * MIB, b'x');
    let res = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", "t=1,v1=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(res, 413, "PAYLOAD_TOO_LARGE").await;
    still_alive(&app).await;
}

#[actix_web::test]
async fn a_ten_mib_chunked_upload_is_answered_413_before_it_ends() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;
    let routes = [
        format!(
            "POST /v1/contests HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        ),
        "POST /v1/webhooks/stripe HTTP/1.1\r\nhost: x\r\nstripe-signature: t=1,v1=00\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_owned(),
    ];
    for head in routes {
        let route = head.lines().next().unwrap().to_owned();
        let (answer, sent) = stream_chunked(&app, head, 10 * MIB).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{route}: {answer}");
        assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{route}: {answer}");
        assert!(answer.contains("x-request-id"), "{route}: {answer}");
        assert!(
            sent < 10 * MIB,
            "{route}: answered only after the whole upload ({sent} bytes)"
        );
    }
    assert_eq!(contest_rows(&app).await, 0, "nothing written");
    still_alive(&app).await;
}

// ---------------------------------------------------------------------------
// 2. Deep nesting

#[actix_web::test]
async fn deeply_nested_json_is_refused_without_a_crash() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;

    // 100 000 brackets are over the 64 KiB limit: refused by size.
    let res = create_raw(&app, &token, "[".repeat(100_000)).await;
    assert_error(res, 413, "PAYLOAD_TOO_LARGE").await;

    // Just under 64 KiB: refused while parsing (this body has no free-form
    // field, so serde stops at the first wrong type; the Stripe test below
    // reaches serde_json's recursion limit).
    let just_under = 65_000;
    let bodies = [
        "[".repeat(just_under),
        format!(
            "{}{}",
            "[".repeat(just_under / 2),
            "]".repeat(just_under / 2)
        ),
        "{\"title\":".repeat(just_under / 9),
        format!("{{\"title\": {}", "[".repeat(just_under - 20)),
        body_with(
            "description",
            &format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
        ),
    ];
    for body in bodies {
        assert!(body.len() < 64 * 1024, "{}", body.len());
        let res = create_raw(&app, &token, body).await;
        assert_error(res, 400, "INVALID_REQUEST").await;
    }
    assert_eq!(contest_rows(&app).await, 0, "nothing written");
    still_alive(&app).await;
}

#[actix_web::test]
async fn deeply_nested_json_in_a_signed_stripe_event_hits_the_recursion_limit_as_400() {
    const SECRET: &str = "whsec_hostile_0123456789";
    let app = TestApp::spawn_with(|vars| {
        vars.insert("STRIPE_WEBHOOK_SECRETS".into(), SECRET.into());
    })
    .await;
    // `data.object` is free-form JSON: serde_json really recurses into it.
    let depth = 32_000;
    let payloads = [
        format!(
            r#"{{"id":"evt_deep","type":"payment_intent.succeeded","data":{{"object":{}{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        format!(
            r#"{{"id":"evt_deep2","type":"payment_intent.succeeded","data":{{"object":{}"#,
            "{\"a\":".repeat(depth / 5)
        ),
    ];
    for payload in payloads {
        assert!(payload.len() < 64 * 1024, "{}", payload.len());
        let t = chrono::Utc::now().timestamp();
        let res = app
            .client
            .post(app.url("/v1/webhooks/stripe"))
            .header("content-type", "application/json")
            .header(
                "stripe-signature",
                common::stripe::signature(&payload, SECRET, t),
            )
            .body(payload)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "INVALID_REQUEST").await;
    }
    let events: i64 = app.count("SELECT count(*) FROM stripe_event").await;
    assert_eq!(events, 0, "no event recorded");
    still_alive(&app).await;
}

// ---------------------------------------------------------------------------
// 3. Invalid UTF-8 and control characters

#[actix_web::test]
async fn invalid_utf8_in_a_json_body_is_400() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;
    let valid = body_with("title", "\"TITLE\"");
    let bodies: Vec<Vec<u8>> = vec![
        valid.replace("TITLE", "a\u{1}b").into_bytes(), // raw control char in a string
        {
            let mut b = valid.clone().into_bytes();
            let at = valid.find("TITLE").unwrap();
            b.splice(at..at + 5, [b'a', 0xff, 0xfe, b'b']);
            b
        },
        {
            let mut b = valid.clone().into_bytes();
            let at = valid.find("TITLE").unwrap();
            b.splice(at..at + 5, [0xc3]); // a truncated two-byte sequence
            b
        },
        {
            let mut b = valid.clone().into_bytes();
            let at = valid.find("TITLE").unwrap();
            b.splice(at..at + 5, [0xed, 0xa0, 0x80]); // an encoded surrogate
            b
        },
        valid.replace("TITLE", "\\ud800").into_bytes(), // a lone surrogate escape
        valid.replace("TITLE", "\\uZZZZ").into_bytes(),
        [&[0xff, 0xfe][..], valid.as_bytes()].concat(), // a UTF-16 byte-order mark
    ];
    for body in bodies {
        let res = create_raw(&app, &token, body).await;
        assert_error(res, 400, "INVALID_REQUEST").await;
    }
    assert_eq!(contest_rows(&app).await, 0, "nothing written");
    still_alive(&app).await;
}

#[actix_web::test]
async fn invalid_utf8_and_control_characters_in_headers_are_not_a_5xx() {
    let app = TestApp::spawn().await;
    let (_, token) = mint_users(&app, 1).await.pop().unwrap();

    // Bytes above 0x7f are legal on the wire (obs-text): the client sends them.
    let odd = reqwest::header::HeaderValue::from_bytes(b"a\xff\xfeb").unwrap();
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", odd.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "replaced: {id}");

    let bearer =
        reqwest::header::HeaderValue::from_bytes(format!("Bearer {token}\u{ff}").as_bytes())
            .unwrap();
    for authorization in [odd, bearer] {
        let res = app
            .client
            .get(app.url("/v1/me"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_error(res, 401, "UNAUTHENTICATED").await;
    }

    // Control characters can only be sent raw.
    let requests: Vec<Vec<u8>> = vec![
        b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-request-id: a\x01b\r\nconnection: close\r\n\r\n"
            .to_vec(),
        b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-request-id: a\x00b\r\nconnection: close\r\n\r\n"
            .to_vec(),
        b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-request-id: \x1b[31mred\x7f\r\nconnection: close\r\n\r\n"
            .to_vec(),
        b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-request-id: a\rb\r\nconnection: close\r\n\r\n"
            .to_vec(),
        format!("GET /v1/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\x00\r\nconnection: close\r\n\r\n")
            .into_bytes(),
        format!("GET /v1/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \x07{token}\r\nconnection: close\r\n\r\n")
            .into_bytes(),
        [
            &b"GET /v1/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xff\xfe"[..],
            token.as_bytes(),
            b"\r\nconnection: close\r\n\r\n",
        ]
        .concat(),
        b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-\xff\xfe: y\r\nconnection: close\r\n\r\n"
            .to_vec(),
    ];
    for request in &requests {
        let answer = raw(&app, request).await;
        let what = String::from_utf8_lossy(request).into_owned();
        // The parser refuses control characters (400); bytes above 0x7f
        // reach the app, which refuses the token (401).
        let status = no_5xx(&what, &answer);
        assert!(matches!(status, Some(400 | 401)), "{what}: {answer}");
    }
    still_alive(&app).await;
}

#[actix_web::test]
async fn invalid_utf8_and_control_characters_in_the_path_are_not_a_5xx() {
    let app = TestApp::spawn().await;
    let (_, token) = mint_users(&app, 1).await.pop().unwrap();

    // Percent-encoded: the router sees them.
    for (path, status, code) in [
        ("/v1/contests/%ff%fe", 400, "INVALID_REQUEST"),
        ("/v1/contests/%00", 400, "INVALID_REQUEST"),
        ("/v1/contests/%c3%28/open", 400, "INVALID_REQUEST"),
        ("/%ff%fe%00", 404, "NOT_FOUND"),
        ("/health/live%00", 404, "NOT_FOUND"),
        ("/v1/%0d%0acontests", 404, "NOT_FOUND"),
    ] {
        let method = if path.ends_with("/open") {
            Method::POST
        } else {
            Method::GET
        };
        let res = app.authed(method, path, &token).send().await.unwrap();
        assert_error(res, status, code).await;
    }

    // Raw bytes in the request line.
    let requests: [&[u8]; 6] = [
        b"GET /v1/contests/\xff\xfe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"GET /health/live\xc3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"GET /health/\x00live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"GET /health/\x01live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"GET /health/live\x7f HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"\xff\xfe /health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    ];
    for request in requests {
        let answer = raw(&app, request).await;
        let what = String::from_utf8_lossy(request);
        assert_eq!(no_5xx(&what, &answer), Some(400), "{what}: {answer}");
    }
    still_alive(&app).await;
}

// ---------------------------------------------------------------------------
// 4. Huge numbers

/// The bad values of an integer field and what api.md says of each.
fn bad_numbers(field: &str) -> Vec<(&'static str, Expect)> {
    let mut cases = vec![
        ("1e30", Expect::Type),
        ("-1e30", Expect::Type),
        ("9223372036854775808", Expect::Either),
        ("-9223372036854775809", Expect::Either),
        ("18446744073709551616", Expect::Either),
        ("100000000000000000000000000000000000000000", Expect::Either),
        ("1.5", Expect::Type),
        ("\"500\"", Expect::Type),
        ("null", Expect::Type),
        ("true", Expect::Type),
        ("[1]", Expect::Type),
        ("{}", Expect::Type),
        ("NaN", Expect::Type),
        ("-1", Expect::Rule),
        ("9223372036854775807", Expect::Rule),
        ("-9223372036854775808", Expect::Rule),
    ];
    if field == "capacity" {
        cases.extend([
            ("0", Expect::Rule),
            ("100001", Expect::Rule),
            ("2147483648", Expect::Rule),
            ("4294967297", Expect::Rule),
        ]);
    } else {
        cases.push(("100001", Expect::Rule));
    }
    cases
}

#[actix_web::test]
async fn huge_numbers_in_money_and_capacity_are_400_or_422_and_write_nothing() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;

    for field in ["entry_fee_cents", "capacity"] {
        for (raw, expect) in bad_numbers(field) {
            let res = create_raw(&app, &token, body_with(field, raw)).await;
            assert_refused(res, field, raw, expect).await;
        }
    }
    assert_eq!(contest_rows(&app).await, 0, "nothing written");

    // The same on a draft's edit: refused, the draft unchanged.
    let contest = common::create_contest(&app, &token, &contest_body()).await;
    let id = contest["id"].as_str().unwrap();
    let before = app
        .authed(Method::GET, &format!("/v1/contests/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    for field in ["entry_fee_cents", "capacity"] {
        // On an edit `null` is "leave it as it is" (checked below).
        for (raw, expect) in bad_numbers(field).into_iter().filter(|(r, _)| *r != "null") {
            let body = format!("{{\"{field}\": {raw}}}");
            let res = patch_raw(&app, &token, id, body).await;
            assert_refused(res, field, raw, expect).await;
        }
    }
    for field in ["entry_fee_cents", "capacity"] {
        let res = patch_raw(&app, &token, id, format!("{{\"{field}\": null}}")).await;
        assert!(
            matches!(res.status().as_u16(), 200 | 400),
            "{field} = null on an edit: {}",
            res.status()
        );
    }
    let after = app
        .authed(Method::GET, &format!("/v1/contests/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(before, after, "the draft is unchanged");
    let (fee, capacity, version): (i64, i32, i64) =
        sqlx::query_as("SELECT entry_fee_cents, capacity, version FROM contest WHERE id = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((fee, capacity, version), (0, 10, 1));
    assert_eq!(contest_rows(&app).await, 1);
    still_alive(&app).await;
}

// ---------------------------------------------------------------------------
// 5. SQL in strings

#[actix_web::test]
async fn sql_in_every_string_field_is_stored_as_text_or_refused() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;
    let mut created = Vec::new();

    for &sql in SQL_INJECTIONS {
        // As a title and as a description: stored verbatim.
        for field in ["title", "description"] {
            let mut body = contest_body();
            body[field] = json!(sql);
            let res = app
                .authed(Method::POST, "/v1/contests", &token)
                .header("idempotency-key", format!("{field}-{sql}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{field} = {sql}");
            let view: Value = res.json().await.unwrap();
            assert_eq!(view[field], sql, "{field} answered back as sent");
            created.push((view["id"].as_str().unwrap().to_owned(), field, sql));
        }
        // As a currency: not a configured one.
        let mut body = contest_body();
        body["currency"] = json!(sql);
        let res = app
            .authed(Method::POST, "/v1/contests", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let body = assert_error(res, 422, "VALIDATION_FAILED").await;
        assert!(body["error"]["details"]["fields"]["currency"].is_string());
    }
    assert_eq!(contest_rows(&app).await, created.len() as i64);

    // Each reads back byte for byte, through the API and in the table.
    for (id, field, sql) in &created {
        let res = app
            .authed(Method::GET, &format!("/v1/contests/{id}"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let view: Value = res.json().await.unwrap();
        assert_eq!(view[*field].as_str().unwrap().as_bytes(), sql.as_bytes());
        let (title, description): (String, String) =
            sqlx::query_as("SELECT title, description FROM contest WHERE id = $1")
                .bind(uuid::Uuid::parse_str(id).unwrap())
                .fetch_one(&app.db)
                .await
                .unwrap();
        let stored = if *field == "title" {
            title
        } else {
            description
        };
        assert_eq!(stored.as_bytes(), sql.as_bytes());
    }

    // On edit: title and description stored verbatim, currency refused.
    let id = created[0].0.clone();
    for &sql in SQL_INJECTIONS {
        let res = app
            .authed(Method::PATCH, &format!("/v1/contests/{id}"), &token)
            .json(&json!({ "title": sql, "description": sql }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "edit to {sql}");
        let view: Value = res.json().await.unwrap();
        assert_eq!(view["title"], sql);
        assert_eq!(view["description"], sql);
        let res = app
            .authed(Method::PATCH, &format!("/v1/contests/{id}"), &token)
            .json(&json!({ "currency": sql }))
            .send()
            .await
            .unwrap();
        assert_error(res, 422, "VALIDATION_FAILED").await;
    }
    let last = SQL_INJECTIONS[SQL_INJECTIONS.len() - 1];
    let (title, currency): (String, String) =
        sqlx::query_as("SELECT title, currency FROM contest WHERE id = $1")
            .bind(uuid::Uuid::parse_str(&id).unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(title, last);
    assert_eq!(currency, "usd");

    assert_tables_intact(&app, created.len() as i64).await;
    still_alive(&app).await;
}

#[actix_web::test]
async fn sql_in_query_parameters_and_path_segments_is_400_or_404() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;
    let contest = common::create_contest(&app, &token, &contest_body()).await;
    let id = contest["id"].as_str().unwrap().to_owned();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);

    for &sql in SQL_INJECTIONS {
        let open_sql = format!("open{sql}");
        let queries: Vec<Vec<(&str, String)>> = vec![
            vec![("state", sql.to_owned())],
            vec![("state", open_sql)],
            vec![("cursor", sql.to_owned())],
            vec![("cursor", b64(&format!("1|{sql}")))],
            vec![("cursor", b64(&format!("{sql}|{id}")))],
            vec![("cursor", b64(&format!("1|{id}{sql}")))],
            vec![("limit", sql.to_owned())],
            vec![("limit", format!("1{sql}"))],
            vec![(sql, "1".to_owned())],
        ];
        for query in queries {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            let res = app
                .authed(Method::GET, &format!("/v1/contests?{query}"), &token)
                .send()
                .await
                .unwrap();
            assert_error(res, 400, "INVALID_REQUEST").await;
        }

        // As a path segment, percent-encoded.
        let enc = segment(sql);
        for (method, path) in [
            (Method::GET, format!("/v1/contests/{enc}")),
            (Method::GET, format!("/v1/contests/{id}{enc}")),
            (Method::PATCH, format!("/v1/contests/{enc}")),
            (Method::POST, format!("/v1/contests/{enc}/open")),
            (Method::GET, format!("/v1/contests/{enc}/entries")),
        ] {
            let mut req = app.authed(method.clone(), &path, &token);
            if method == Method::PATCH {
                req = req.json(&json!({ "title": "x" }));
            }
            let res = req.send().await.unwrap();
            assert_error(res, 400, "INVALID_REQUEST").await;
        }
        // A segment that matches no route at all.
        let res = app
            .authed(Method::GET, &format!("/v1/{enc}"), &token)
            .send()
            .await
            .unwrap();
        assert_error(res, 404, "NOT_FOUND").await;
    }

    // The listing still lists exactly the one draft.
    let page: Value = app
        .authed(Method::GET, "/v1/contests", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_tables_intact(&app, 1).await;
    still_alive(&app).await;
}

/// Every byte but the unreserved ones percent-encoded.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `contest` and `app_user` still exist, `contest` with `rows` rows.
async fn assert_tables_intact(app: &TestApp, rows: i64) {
    for table in ["contest", "app_user", "entry", "idempotency_key"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("public.{table}"))
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert!(exists, "table {table} exists");
    }
    assert_eq!(contest_rows(app).await, rows, "rows in contest");
}

#[actix_web::test]
async fn a_nul_character_in_a_contest_string_is_refused_not_a_5xx() {
    let app = TestApp::spawn().await;
    let token = organizer(&app).await;
    // Every answer that is not a 400 or 422, to report them all at once.
    let mut wrong = Vec::new();

    for field in ["title", "description"] {
        let mut body = contest_body();
        body[field] = json!("before\u{0}after");
        let res = app
            .authed(Method::POST, "/v1/contests", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if !matches!(status, 400 | 422) {
            let text = res.text().await.unwrap_or_default();
            wrong.push(format!(
                "POST /v1/contests with a NUL in {field}: {status} {text}"
            ));
        }
    }
    assert_eq!(contest_rows(&app).await, 0, "nothing written");

    let contest = common::create_contest(&app, &token, &contest_body()).await;
    let id = contest["id"].as_str().unwrap();
    for field in ["title", "description"] {
        let res = app
            .authed(Method::PATCH, &format!("/v1/contests/{id}"), &token)
            .json(&json!({ field: "before\u{0}after" }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if !matches!(status, 400 | 422) {
            let text = res.text().await.unwrap_or_default();
            wrong.push(format!(
                "PATCH /v1/contests/{{id}} with a NUL in {field}: {status} {text}"
            ));
        }
    }
    let (title, version): (String, i64) =
        sqlx::query_as("SELECT title, version FROM contest WHERE id = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (title.as_str(), version),
        ("Friday quiz", 1),
        "the draft is unchanged"
    );
    // The contest still works (its actor did not die on it).
    let res = app
        .authed(Method::POST, &format!("/v1/contests/{id}/open"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the contest still opens");
    let title: String = sqlx::query_scalar("SELECT title FROM contest WHERE id = $1")
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(title, "Friday quiz", "the refused edit left no trace");
    still_alive(&app).await;
    assert!(
        wrong.is_empty(),
        "a client's NUL answered as a server fault:\n{}",
        wrong.join("\n")
    );
}

#[actix_web::test]
async fn a_nul_character_in_the_name_given_at_sign_in_is_not_a_5xx() {
    let app = AppleApp::spawn().await;
    let token = app
        .key
        .sign(&common::apple::apple_claims("nul-sub", common::CLIENT_ID));
    let res = app
        .post_json(
            "/v1/auth/apple",
            &json!({
                "identity_token": token,
                "full_name": { "given_name": "Ann\u{0}", "family_name": "'; DROP TABLE app_user; --" },
            }),
        )
        .await;
    let status = res.status().as_u16();
    assert!(
        matches!(status, 200 | 400 | 422),
        "sign-in with a NUL in the name: {status} {}",
        res.text().await.unwrap_or_default()
    );
    still_alive(&app).await;
}

// ---------------------------------------------------------------------------
// 6. Ten thousand connections

#[actix_web::test]
async fn ten_thousand_connections_opened_and_dropped_leave_the_server_answering() {
    let app = TestApp::spawn().await;
    let (_, token) = mint_users(&app, 1).await.pop().unwrap();

    const TOTAL: usize = 10_000;
    // Both ends of every connection are file descriptors of this process.
    let limit = open_files_limit();
    let batch = 500.min(limit / 4);
    assert!(
        batch >= 50,
        "open-files limit too low for this test: {limit}"
    );
    const CONNECTING: usize = 50;

    let started = Instant::now();
    let (mut opened, mut partial) = (0usize, 0usize);
    while opened < TOTAL {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "only {opened} connections in 40 s"
        );
        let n = batch.min(TOTAL - opened);
        let mut held = Vec::with_capacity(n);
        // At most CONNECTING handshakes in flight (under the listen backlog).
        let mut i = 0;
        while i < n {
            let wave = CONNECTING.min(n - i);
            let mut set = tokio::task::JoinSet::new();
            for k in 0..wave {
                let port = app.port;
                let half = (opened + i + k) % 4 == 0;
                set.spawn(async move {
                    let mut stream = tokio::time::timeout(
                        Duration::from_secs(5),
                        TcpStream::connect(("127.0.0.1", port)),
                    )
                    .await
                    .ok()?
                    .ok()?;
                    if half {
                        stream.write_all(b"GET /health/li").await.ok()?;
                    }
                    Some((stream, half))
                });
            }
            while let Some(joined) = set.join_next().await {
                if let Some(conn) = joined.unwrap() {
                    held.push(conn);
                }
            }
            i += wave;
            // Let the accept thread drain the listen queue (a backlog of 128).
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(held.len(), n, "every connection of a batch is made");
        opened += n;
        partial += held.iter().filter(|(_, half)| *half).count();
        drop(held);
    }
    assert_eq!(opened, TOTAL);
    assert!(partial >= TOTAL / 5, "{partial} sent half a request line");
    let opening = started.elapsed();

    // Within a few seconds: alive, and a normal authenticated request works.
    let deadline = Instant::now() + Duration::from_secs(5);
    still_alive(&app).await;
    let res = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        app.authed(Method::GET, "/v1/me", &token).send(),
    )
    .await
    .expect("/v1/me answers within 5 s")
    .unwrap();
    assert_eq!(res.status(), 200, "/v1/me after {TOTAL} connections");
    println!("{TOTAL} connections ({partial} half requests) in {opening:?}");
}

// ---------------------------------------------------------------------------
// 7. A slow client

/// Dribbles `bytes` one at a time, `every` apart, while reading; stops
/// writing when the server answers or closes. Returns the answer and when
/// it came (or the connection closed).
async fn dribble(
    port: u16,
    bytes: &'static [u8],
    every: Duration,
    give_up: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let answered = Arc::new(AtomicBool::new(false));
    let writer = {
        let answered = answered.clone();
        tokio::spawn(async move {
            for byte in bytes {
                if answered.load(Ordering::SeqCst) || wr.write_all(&[*byte]).await.is_err() {
                    return wr;
                }
                tokio::time::sleep(every).await;
            }
            wr
        })
    };
    let answer = read_answer(&mut rd, started + give_up, Some(&answered)).await;
    answered.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    writer.abort();
    (answer, elapsed)
}

#[actix_web::test]
async fn a_client_sending_a_byte_a_second_hangs_no_one_and_gets_no_5xx() {
    let app = TestApp::spawn().await;
    let (_, token) = mint_users(&app, 1).await.pop().unwrap();

    // 12 bytes of a request head, one a second: the head is not complete
    // within the 10 s client request timeout.
    let slow = tokio::spawn(dribble(
        app.port,
        &b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n"[..12],
        Duration::from_secs(1),
        Duration::from_secs(16),
    ));
    // A whole request, five bytes a second: complete in about 6 s.
    let steady = tokio::spawn(dribble(
        app.port,
        b"GET /health/live HTTP/1.0\r\n\r\n",
        Duration::from_millis(200),
        Duration::from_secs(12),
    ));

    // Meanwhile other clients are served at once.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(11) && served < 40 {
        for path in ["/health/live", "/v1/me"] {
            let t = Instant::now();
            let res = tokio::time::timeout(
                Duration::from_secs(2),
                app.authed(Method::GET, path, &token).send(),
            )
            .await
            .unwrap_or_else(|_| panic!("{path} waited 2 s behind a slow client"))
            .unwrap();
            assert_eq!(res.status(), 200, "{path}");
            assert!(t.elapsed() < Duration::from_secs(2), "{path}");
        }
        served += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(served >= 10, "{served} rounds served");

    let (answer, after) = steady.await.unwrap();
    assert_eq!(
        status_of(&answer),
        Some(200),
        "the steady dribble: {answer}"
    );
    assert!(answer.contains("\"ok\""), "{answer}");

    let (answer, after_slow) = slow.await.unwrap();
    assert!(
        after_slow < Duration::from_secs(15),
        "the slow connection neither answered nor closed in {after_slow:?}"
    );
    let status = no_5xx("the slow dribble", &answer);
    assert!(
        matches!(status, None | Some(408)),
        "the slow dribble: {answer}"
    );
    println!("steady answered after {after:?}; slow ended after {after_slow:?}: {status:?}");
    still_alive(&app).await;
}
