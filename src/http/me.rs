//! `/v1/me`: the signed-in user, and account deletion.

use actix_web::{HttpRequest, HttpResponse, delete, get, web};

use super::views::UserView;
use crate::actors::{ActorError, Execute};
use crate::auth::extract::AuthUser;
use crate::auth::sessions;
use crate::domain::{Command, DomainError};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::http::contests::actor_error;
use crate::startup::AppState;
use crate::store::{self, users};

/// The caller.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody))
)]
#[get("/v1/me")]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let row = users::find(&state.db, user.id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    Ok(HttpResponse::Ok().json(UserView::from(row)))
}

/// Deletes the account (App Store guideline 5.1.1(v)): sessions revoked,
/// personal data erased; a later sign-in with the same Apple account creates
/// a new user.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody))
)]
#[delete("/v1/me")]
pub async fn delete_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    // Entries in open contests are withdrawn as a withdrawal would (a paid
    // one is refunded); entries of locked and settled contests stay, linked
    // to the anonymous placeholder the account becomes. A failure here
    // answers before anything is erased, so a retry completes the deletion.
    for contest in store::contests::open_contests_entered_by(&state.db, user.id).await? {
        let withdraw = Execute::new(Command::Withdraw { user_id: user.id }, Some(user.id));
        match state.registry.execute(contest, withdraw).await {
            Ok(_)
            | Err(ActorError::Domain(
                DomainError::NotEntered | DomainError::InvalidTransition { .. },
            )) => {}
            Err(e) => return Err(actor_error(e)),
        }
    }
    sessions::delete_account(&state.db, user.id, state.client_ip(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}
