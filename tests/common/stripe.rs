//! The fake Stripe of the tests: localstripe, started by `scripts/test`
//! through `scripts/localstripe_launcher.py`, reached at `LOCALSTRIPE_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::Value;
use sha2::Sha256;

pub const SECRET_KEY: &str = "sk_test_localstripe";
pub const PUBLISHABLE_KEY: &str = "pk_test_localstripe";
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

/// localstripe's address; the suite refuses to run the payment tests
/// without it rather than skip them.
pub fn url() -> String {
    std::env::var("LOCALSTRIPE_URL").expect(
        "LOCALSTRIPE_URL is unset: run the suite with scripts/test, which starts localstripe",
    )
}

/// The variables that point an app at localstripe.
pub fn configure(vars: &mut HashMap<String, String>) {
    vars.insert("STRIPE_API_BASE".into(), format!("{}/", url()));
    vars.insert("STRIPE_SECRET_KEY".into(), SECRET_KEY.into());
    vars.insert("STRIPE_PUBLISHABLE_KEY".into(), PUBLISHABLE_KEY.into());
    vars.insert("STRIPE_WEBHOOK_SECRETS".into(), WEBHOOK_SECRET.into());
}

fn client() -> reqwest::Client {
    contest_backend::auth::install_crypto_provider();
    reqwest::Client::new()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn post(path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let res = client()
        .post(format!("{}{path}", url()))
        .bearer_auth(SECRET_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(path: &str) -> Value {
    client()
        .get(format!("{}{path}", url()))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Makes localstripe deliver every event to `port`'s webhook, signed with
/// `secret`.
pub async fn register_webhook(port: u16, secret: &str) {
    let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
    let (status, body) = post(
        &format!("/_config/webhooks/{id}"),
        &[
            (
                "url",
                &format!("http://127.0.0.1:{port}/v1/webhooks/stripe"),
            ),
            ("secret", secret),
        ],
    )
    .await;
    assert!(
        (200..300).contains(&status),
        "webhook registration: {status} {body}"
    );
}

/// Confirms a PaymentIntent as the app does with Stripe's SDK.
pub async fn confirm(payment_intent: &str, payment_method: &str) -> (u16, Value) {
    post(
        &format!("/v1/payment_intents/{payment_intent}/confirm"),
        &[("payment_method", payment_method)],
    )
    .await
}

pub async fn payment_intent(id: &str) -> Value {
    get(&format!("/v1/payment_intents/{id}")).await
}

/// Every PaymentIntent localstripe holds.
pub async fn payment_intents() -> Vec<Value> {
    get("/v1/payment_intents?limit=100").await["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The refunds localstripe made for a PaymentIntent.
pub async fn refunds_of(payment_intent: &str) -> Vec<Value> {
    get("/v1/refunds?limit=100").await["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r["payment_intent"] == payment_intent
                || r["charge"]
                    .as_str()
                    .is_some_and(|c| c.contains(payment_intent))
        })
        .collect()
}

/// A `Stripe-Signature` header for `payload` at unix time `t`.
pub fn signature(payload: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// An event as Stripe would send it.
pub fn event(id: &str, kind: &str, object: Value) -> String {
    serde_json::json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "data": { "object": object },
    })
    .to_string()
}
