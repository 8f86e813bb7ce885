//! Payments (security.md "Payments" and "Stripe webhooks", architecture.md
//! "Outbox and payment worker"): the gateway a paid join uses to create its
//! PaymentIntent, the webhook verification, and the outbox worker that
//! cancels and refunds.
//!
//! No Stripe call is ever awaited by a contest actor or inside a database
//! transaction: the join handler creates the PaymentIntent after the actor
//! reserved the seat, and the worker calls Stripe between two short
//! transactions.

pub mod stripe;
pub mod webhook;
pub mod worker;

use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::config::Settings;
use stripe::StripeClient;

/// A PaymentIntent created for an entry.
#[derive(Debug, Clone)]
pub struct CreatedIntent {
    pub id: String,
    pub client_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Stripe could not be reached, timed out or failed: retry later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// Stripe refused the call for good (a 4xx), with its error code.
    #[error("the payment provider refused: {code}")]
    Rejected { code: String },
}

/// What a PaymentIntent is for.
#[derive(Debug, Clone)]
pub struct IntentRequest {
    pub contest_id: Uuid,
    pub entry_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
}

pub enum PaymentGateway {
    /// No Stripe key configured (`local`/`test` only; elsewhere start-up
    /// refuses): paid joins hold their seat and answer 502.
    Unconfigured,
    Stripe {
        client: Box<StripeClient>,
        publishable_key: String,
    },
}

impl PaymentGateway {
    pub fn from_settings(settings: &Settings) -> Result<PaymentGateway, GatewayError> {
        let Some(key) = &settings.stripe.secret_key else {
            tracing::warn!("STRIPE_SECRET_KEY unset: paid contests cannot take payments");
            return Ok(PaymentGateway::Unconfigured);
        };
        Ok(PaymentGateway::Stripe {
            client: Box::new(StripeClient::new(
                key.expose_secret(),
                &settings.stripe.api_base,
            )?),
            publishable_key: settings.stripe.publishable_key.clone().unwrap_or_default(),
        })
    }

    /// The entry's PaymentIntent: created the first time, found again after
    /// (the same entry always gets the same one).
    pub async fn payment_intent_for(
        &self,
        request: &IntentRequest,
        existing: Option<&str>,
    ) -> Result<CreatedIntent, GatewayError> {
        match self {
            PaymentGateway::Unconfigured => Err(GatewayError::Unavailable(format!(
                "no payment provider is configured (entry {})",
                request.entry_id
            ))),
            PaymentGateway::Stripe { client, .. } => match existing {
                Some(id) => client.retrieve_payment_intent(id).await,
                None => client.create_payment_intent(request).await,
            },
        }
    }

    pub fn client(&self) -> Option<&StripeClient> {
        match self {
            PaymentGateway::Unconfigured => None,
            PaymentGateway::Stripe { client, .. } => Some(client),
        }
    }

    pub fn publishable_key(&self) -> &str {
        match self {
            PaymentGateway::Unconfigured => "",
            PaymentGateway::Stripe {
                publishable_key, ..
            } => publishable_key,
        }
    }
}
