//! `/v1/me`: the signed-in user, and account deletion.

use actix_web::{HttpRequest, HttpResponse, delete, get, web};

use super::views::UserView;
use crate::auth::extract::AuthUser;
use crate::auth::sessions;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::startup::AppState;
use crate::store::users;

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
    sessions::delete_account(&state.db, user.id, state.client_ip(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}
