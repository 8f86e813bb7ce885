//! Entries: join, withdraw, and the lists of entries.

use actix_web::{HttpResponse, delete, get, post, web};
use uuid::Uuid;

use super::contests::{actor_error, authorize_entering, authorized_contest};
use super::views::{EntryView, JoinResponse, PaymentView};
use crate::actors::Execute;
use crate::auth::access::Action;
use crate::auth::extract::AuthUser;
use crate::domain::{Command, EntryStatus, Event};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::payments::{GatewayError, IntentRequest};
use crate::startup::AppState;
use crate::store::contests;

/// Joins the contest. A free contest confirms the entry at once; a paid one
/// holds the seat (`pending_payment`) while the app pays the PaymentIntent.
/// A retry while the entry is pending resumes the same entry (`200`).
#[utoipa::path(
    tag = "entries",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 201, description = "a new entry", body = JoinResponse),
        (status = 200, description = "the caller's pending entry, resumed", body = JoinResponse),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "CONTEST_FULL, ALREADY_ENTERED or INVALID_TRANSITION", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
#[post("/v1/contests/{id}/entries")]
pub async fn join(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    authorize_entering(&state, &user, id).await?;
    let command = Command::Join {
        user_id: user.id,
        entry_id: Uuid::new_v4(),
    };
    let reply = state
        .registry
        .execute(id, Execute::new(command, Some(user.id)))
        .await
        .map_err(actor_error)?;
    let created = reply
        .events
        .iter()
        .any(|e| matches!(e, Event::EntryCreated { .. }));
    let entry = reply
        .entry
        .filter(|e| e.status.holds_seat())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("join accepted without an entry")))?;

    let payment = if entry.status == EntryStatus::PendingPayment {
        // Outside the actor and any transaction: the seat is already held.
        let request = IntentRequest {
            contest_id: id,
            entry_id: entry.id,
            amount_cents: entry.amount_cents,
            currency: entry.currency.clone(),
        };
        let intent = state
            .payments
            .payment_intent_for(&request, entry.payment_intent_id.as_deref())
            .await
            .map_err(|e: GatewayError| {
                tracing::warn!(contest_id = %id, entry_id = %entry.id, error = %e, "payment provider unavailable");
                ApiError::new(ErrorCode::PaymentProviderUnavailable)
                    .with_message("the payment provider is unavailable; your seat is held, retry shortly")
            })?;
        let attach = Command::AttachPaymentIntent {
            entry_id: entry.id,
            payment_intent_id: intent.id.clone(),
        };
        state
            .registry
            .execute(id, Execute::new(attach, Some(user.id)))
            .await
            .map_err(actor_error)?;
        Some(PaymentView {
            payment_intent_id: intent.id,
            client_secret: intent.client_secret,
            publishable_key: state.payments.publishable_key().to_owned(),
        })
    } else {
        None
    };
    let body = JoinResponse {
        entry: EntryView::of(id, &entry),
        payment,
    };
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Withdraws the caller's entry while the contest is open (a paid,
/// confirmed entry is refunded).
#[utoipa::path(
    tag = "entries",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = EntryView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    )
)]
#[delete("/v1/contests/{id}/entries/me")]
pub async fn withdraw(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    authorize_entering(&state, &user, id).await?;
    let reply = state
        .registry
        .execute(
            id,
            Execute::new(Command::Withdraw { user_id: user.id }, Some(user.id)),
        )
        .await
        .map_err(actor_error)?;
    let entry = reply
        .entry
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(HttpResponse::Ok().json(EntryView::of(id, &entry)))
}

/// Every entry of the contest (its organizer, admins).
#[utoipa::path(
    tag = "entries",
    operation_id = "list_entries",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<EntryView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/v1/contests/{id}/entries")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = authorized_contest(&state, &user, *path, Action::ListEntries).await?;
    let entries: Vec<EntryView> = contests::entries(&state.db, row.id)
        .await?
        .into_iter()
        .map(EntryView::from)
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}

/// The caller's entry in the contest (the newest), or 404.
#[utoipa::path(
    tag = "entries",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EntryView), (status = 404, body = ErrorBody))
)]
#[get("/v1/contests/{id}/entries/me")]
pub async fn mine(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = authorized_contest(&state, &user, *path, Action::ReadContest).await?;
    let entry = contests::entry_of_user(&state.db, row.id, user.id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound).with_message("you have no entry here"))?;
    Ok(HttpResponse::Ok().json(EntryView::from(entry)))
}

/// The caller's entries in every contest, newest first.
#[utoipa::path(
    tag = "entries",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<EntryView>), (status = 401, body = ErrorBody))
)]
#[get("/v1/me/entries")]
pub async fn my_entries(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let entries: Vec<EntryView> = contests::entries_of_user(&state.db, user.id)
        .await?
        .into_iter()
        .map(EntryView::from)
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}
