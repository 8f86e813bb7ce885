//! The one place that talks to Stripe, over async-stripe 1.0 (pinned: the
//! line is a release candidate, and an upgrade should touch this file only).
//! Every call carries an idempotency key derived from the entry id
//! (`entry-<id>-create`, `-cancel`, `-refund`), so a retry after a crash or
//! a timeout never charges, cancels or refunds twice.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::time::Duration;

use stripe::{
    Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest as _,
};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use uuid::Uuid;

use super::{CreatedIntent, GatewayError, IntentRequest};

pub struct StripeClient {
    client: Client,
}

/// What a refund call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    /// Stripe says the money is back (`succeeded`).
    Succeeded,
    /// Pending or otherwise not final: `charge.refunded` will tell.
    Pending(String),
}

fn unavailable(e: StripeError) -> GatewayError {
    match e {
        StripeError::Stripe(err, status) if (400..500).contains(&status) && status != 429 => {
            GatewayError::Rejected {
                code: err
                    .code
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| format!("http_{status}")),
            }
        }
        StripeError::Stripe(_, status) => {
            GatewayError::Unavailable(format!("stripe answered {status}"))
        }
        other => GatewayError::Unavailable(other.to_string()),
    }
}

fn key(entry: Uuid, what: &str) -> Result<RequestStrategy, GatewayError> {
    IdempotencyKey::new(format!("entry-{entry}-{what}"))
        .map(RequestStrategy::Idempotent)
        .map_err(|e| GatewayError::Unavailable(e.to_string()))
}

impl StripeClient {
    pub fn new(secret_key: &str, api_base: &str) -> Result<StripeClient, GatewayError> {
        let client = ClientBuilder::new(secret_key)
            .url(api_base)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GatewayError::Unavailable(format!("stripe client: {e}")))?;
        Ok(StripeClient { client })
    }

    /// Creates the entry's PaymentIntent (the same one again for the same
    /// entry: the idempotency key is the entry's).
    pub async fn create_payment_intent(
        &self,
        request: &IntentRequest,
    ) -> Result<CreatedIntent, GatewayError> {
        let currency = stripe_types::Currency::from_str(&request.currency)
            .map_err(|_| GatewayError::Unavailable(format!("currency {}", request.currency)))?;
        let metadata = HashMap::from([
            ("contest_id".to_owned(), request.contest_id.to_string()),
            ("entry_id".to_owned(), request.entry_id.to_string()),
        ]);
        let intent = CreatePaymentIntent::new(request.amount_cents, currency)
            .metadata(metadata)
            .customize()
            .request_strategy(key(request.entry_id, "create")?)
            .send(&self.client)
            .await
            .map_err(unavailable)?;
        let client_secret = intent
            .client_secret
            .ok_or_else(|| GatewayError::Unavailable("no client secret".into()))?;
        Ok(CreatedIntent {
            id: intent.id.as_str().to_owned(),
            client_secret,
        })
    }

    /// The client secret of an existing PaymentIntent (a join retried after
    /// a lost answer).
    pub async fn retrieve_payment_intent(&self, id: &str) -> Result<CreatedIntent, GatewayError> {
        let intent = RetrievePaymentIntent::new(id)
            .send(&self.client)
            .await
            .map_err(unavailable)?;
        Ok(CreatedIntent {
            id: intent.id.as_str().to_owned(),
            client_secret: intent
                .client_secret
                .ok_or_else(|| GatewayError::Unavailable("no client secret".into()))?,
        })
    }

    pub async fn cancel_payment_intent(&self, entry: Uuid, id: &str) -> Result<(), GatewayError> {
        CancelPaymentIntent::new(id)
            .customize()
            .request_strategy(key(entry, "cancel")?)
            .send(&self.client)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    pub async fn refund(
        &self,
        entry: Uuid,
        payment_intent: &str,
    ) -> Result<RefundState, GatewayError> {
        let refund = CreateRefund::new()
            .payment_intent(payment_intent)
            .customize()
            .request_strategy(key(entry, "refund")?)
            .send(&self.client)
            .await
            .map_err(unavailable)?;
        Ok(match refund.status.as_deref() {
            Some("succeeded") => RefundState::Succeeded,
            other => RefundState::Pending(other.unwrap_or("unknown").to_owned()),
        })
    }
}
