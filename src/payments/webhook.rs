//! Stripe webhooks: the signature check on the raw body, and the reading
//! of the few event types the service acts on.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex hmac-sha256 of "t.body">[,v1=…]`:
//! every `v1` is compared in constant time against every configured secret
//! (two during a rotation), and `t` must lie within 300 s of now.

use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// How far the signature's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused (the audit `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    MissingHeader,
    MalformedHeader,
    TimestampOutOfTolerance,
    NoMatch,
}

impl SignatureError {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "missing_header",
            SignatureError::MalformedHeader => "malformed_header",
            SignatureError::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            SignatureError::NoMatch => "no_matching_signature",
        }
    }
}

/// Checks `header` over `body` against every secret, at `now` (unix s).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if signatures.is_empty() {
        return Err(SignatureError::MalformedHeader);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        if signatures
            .iter()
            .any(|sig| bool::from(sig.as_slice().ct_eq(expected.as_slice())))
        {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

/// A Stripe event, as far as the service reads it.
#[derive(Debug, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: Value,
}

/// What an event means for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentUpdate {
    Succeeded {
        payment_intent: String,
        amount_cents: i64,
        currency: String,
    },
    Failed {
        payment_intent: String,
        error: String,
    },
    Refunded {
        payment_intent: String,
    },
    /// A type the service does not act on (it is still recorded).
    Ignored,
}

impl StripeEvent {
    /// Reads the handled types; anything unreadable counts as ignored.
    pub fn update(&self) -> PaymentUpdate {
        let o = &self.data.object;
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        match self.kind.as_str() {
            "payment_intent.succeeded" => match (text("id"), text("currency")) {
                (Some(payment_intent), Some(currency)) => PaymentUpdate::Succeeded {
                    payment_intent,
                    amount_cents: o
                        .get("amount_received")
                        .and_then(Value::as_i64)
                        .or_else(|| o.get("amount").and_then(Value::as_i64))
                        .unwrap_or(-1),
                    currency: currency.to_ascii_lowercase(),
                },
                _ => PaymentUpdate::Ignored,
            },
            "payment_intent.payment_failed" => match text("id") {
                Some(payment_intent) => PaymentUpdate::Failed {
                    payment_intent,
                    error: o
                        .pointer("/last_payment_error/code")
                        .or_else(|| o.pointer("/last_payment_error/message"))
                        .and_then(Value::as_str)
                        .unwrap_or("payment_failed")
                        .chars()
                        .take(200)
                        .collect(),
                },
                None => PaymentUpdate::Ignored,
            },
            "charge.refunded" => {
                let full = o.get("refunded").and_then(Value::as_bool).unwrap_or(false)
                    || o.get("amount_refunded").and_then(Value::as_i64)
                        == o.get("amount").and_then(Value::as_i64);
                match text("payment_intent") {
                    Some(payment_intent) if full => PaymentUpdate::Refunded { payment_intent },
                    _ => PaymentUpdate::Ignored,
                }
            }
            _ => PaymentUpdate::Ignored,
        }
    }
}
