//! Payments: the gateway a paid join uses to create its PaymentIntent.
//! Issue 5 supplies the Stripe implementation (client, webhooks, outbox
//! worker); until then no provider is configured and a paid join holds its
//! seat and answers `502 PAYMENT_PROVIDER_UNAVAILABLE`, exactly as it will
//! when Stripe cannot be reached.

use uuid::Uuid;

/// A PaymentIntent created for an entry.
#[derive(Debug, Clone)]
pub struct CreatedIntent {
    pub id: String,
    pub client_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
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
    /// No provider configured.
    Unconfigured,
}

impl PaymentGateway {
    /// Creates (or, for the same entry, finds again) the entry's
    /// PaymentIntent. Never called by a contest actor nor inside a
    /// database transaction.
    pub async fn create_payment_intent(
        &self,
        request: &IntentRequest,
    ) -> Result<CreatedIntent, GatewayError> {
        match self {
            PaymentGateway::Unconfigured => Err(GatewayError::Unavailable(format!(
                "no payment provider is configured (entry {})",
                request.entry_id
            ))),
        }
    }

    pub fn publishable_key(&self) -> &str {
        match self {
            PaymentGateway::Unconfigured => "",
        }
    }
}
