//! `POST /v1/webhooks/stripe`.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;

use crate::actors::{ActorError, Execute};
use crate::audit::{self, AuditEvent, AuditKind, Outcome};
use crate::domain::{Command, DomainError};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::http::contests::actor_error;
use crate::payments::webhook::{self, PaymentUpdate, StripeEvent};
use crate::startup::AppState;
use crate::store::contests::{self, StripeEventRef};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAnswer {
    pub received: bool,
    /// The event had been applied before; nothing was done.
    pub duplicate: bool,
}

fn answer(duplicate: bool) -> HttpResponse {
    HttpResponse::Ok().json(WebhookAnswer {
        received: true,
        duplicate,
    })
}

/// Stripe's webhook: signature checked on the raw body, each event applied
/// once by its contest's actor; `5xx` when the effect could not be made
/// durable, so that Stripe retries.
#[utoipa::path(
    tag = "payments",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex hmac>")),
    request_body(content = String, content_type = "application/json", description = "the Stripe event, as Stripe signed it"),
    responses(
        (status = 200, body = WebhookAnswer),
        (status = 400, description = "WEBHOOK_SIGNATURE_INVALID", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
#[post("/v1/webhooks/stripe")]
pub async fn stripe(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = webhook::verify(header, &body, &state.settings.stripe.webhook_secrets, now) {
        audit::record_best_effort(
            &state.db,
            AuditEvent::new(AuditKind::WebhookSignature, Outcome::Failure)
                .reason(e.as_str())
                .client_ip(state.client_ip(&req)),
        )
        .await;
        return Err(ApiError::new(ErrorCode::WebhookSignatureInvalid));
    }
    let event: StripeEvent = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(ErrorCode::InvalidRequest).with_message("the event is not a Stripe event")
    })?;
    let reference = StripeEventRef {
        id: event.id.clone(),
        kind: event.kind.clone(),
    };
    let (payment_intent, command) = match event.update() {
        PaymentUpdate::Ignored => {
            let first = contests::record_stripe_event(&state.db, &reference, None).await?;
            return Ok(answer(!first));
        }
        PaymentUpdate::Succeeded {
            payment_intent,
            amount_cents,
            currency,
        } => (
            payment_intent.clone(),
            Command::PaymentSucceeded {
                payment_intent_id: payment_intent,
                amount_cents,
                currency,
            },
        ),
        PaymentUpdate::Failed {
            payment_intent,
            error,
        } => (
            payment_intent.clone(),
            Command::PaymentFailed {
                payment_intent_id: payment_intent,
                error,
            },
        ),
        PaymentUpdate::Refunded { payment_intent } => (
            payment_intent.clone(),
            Command::Refunded {
                payment_intent_id: payment_intent,
            },
        ),
    };
    if contests::stripe_event_seen(&state.db, &reference.id).await? {
        return Ok(answer(true));
    }
    // The entry is found by the PaymentIntent id the service stored, never
    // by the event's metadata.
    let Some(contest) = contests::contest_of_payment_intent(&state.db, &payment_intent).await?
    else {
        tracing::warn!(event_id = %reference.id, "a Stripe event for a PaymentIntent that is not ours");
        let first = contests::record_stripe_event(&state.db, &reference, None).await?;
        return Ok(answer(!first));
    };
    let msg = Execute {
        command,
        actor: None,
        expected_version: None,
        stripe_event: Some(reference.clone()),
    };
    match state.registry.execute(contest, msg).await {
        Ok(reply) => Ok(answer(reply.duplicate)),
        Err(ActorError::Domain(DomainError::UnknownEntry)) => {
            let first = contests::record_stripe_event(&state.db, &reference, Some(contest)).await?;
            Ok(answer(!first))
        }
        Err(e) => Err(actor_error(e)),
    }
}
