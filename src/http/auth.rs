//! `/v1/auth/*`: sign in with Apple, refresh, log out.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Deserialize;

use super::views::TokenResponse;
use crate::audit::{self, AuditEvent, AuditKind, Outcome};
use crate::auth::extract::AuthUser;
use crate::auth::sessions;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppleSignInRequest {
    /// The identity token (a JWT) Apple gave the app.
    pub identity_token: String,
    /// The raw nonce whose SHA-256 the app gave Apple.
    pub nonce: Option<String>,
    /// Accepted for compatibility; the service does not exchange it.
    pub authorization_code: Option<String>,
    /// Sent by the app on the first sign-in only (Apple never puts it in
    /// the token).
    pub full_name: Option<FullName>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FullName {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

const MAX_NAME_CHARS: usize = 100;
const MAX_NONCE_CHARS: usize = 256;

impl FullName {
    fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.given_name, &self.family_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

impl AppleSignInRequest {
    fn validate(&self) -> Result<(), ApiError> {
        let mut bad = Vec::new();
        if self.identity_token.trim().is_empty() {
            bad.push(("identity_token", "must not be empty"));
        }
        if self
            .nonce
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.chars().count() > MAX_NONCE_CHARS)
        {
            bad.push(("nonce", "must be 1 to 256 characters"));
        }
        if let Some(name) = &self.full_name {
            // PostgreSQL text cannot hold NUL: refuse it here, not at the write.
            let bad_name = |n: &Option<String>| {
                n.as_ref()
                    .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS || n.contains('\0'))
            };
            if bad_name(&name.given_name) {
                bad.push(("full_name.given_name", "at most 100 characters, no NUL"));
            }
            if bad_name(&name.family_name) {
                bad.push(("full_name.family_name", "at most 100 characters, no NUL"));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(&bad))
        }
    }
}

/// Sign in with Apple: verifies the identity token, creates the user on
/// first sign-in, and starts a session.
#[utoipa::path(
    tag = "authentication",
    request_body = AppleSignInRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = ErrorBody), (status = 401, description = "APPLE_TOKEN_INVALID", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    )
)]
#[post("/v1/auth/apple")]
pub async fn apple(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AppleSignInRequest>,
) -> Result<HttpResponse, ApiError> {
    state.check_auth_rate(&req).await?;
    body.validate()?;
    let ip = state.client_ip(&req);
    let identity = match state
        .auth
        .apple
        .verify(&body.identity_token, body.nonce.as_deref())
        .await
    {
        Ok(identity) => identity,
        Err(rejection) => {
            audit::record_best_effort(
                &state.db,
                AuditEvent::new(AuditKind::SignIn, Outcome::Failure)
                    .reason(rejection.as_str())
                    .client_ip(ip)
                    .details(serde_json::json!({
                        "token": audit::fingerprint(&body.identity_token),
                    })),
            )
            .await;
            return Err(ApiError::new(ErrorCode::AppleTokenInvalid));
        }
    };
    let display_name = body.full_name.as_ref().and_then(FullName::display_name);
    let session = sessions::sign_in(
        &state.auth,
        &state.db,
        &identity,
        display_name.as_deref(),
        ip,
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchanges a refresh token for new tokens; the presented one is spent.
#[utoipa::path(
    tag = "authentication",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "REFRESH_TOKEN_INVALID or REFRESH_TOKEN_REUSED", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 429, body = ErrorBody),
    )
)]
#[post("/v1/auth/refresh")]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    state.check_auth_rate(&req).await?;
    let ip = state.client_ip(&req);
    let session = sessions::refresh(&state.auth, &state.db, &body.refresh_token, ip).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    pub refresh_token: Option<String>,
}

/// Ends the session: its refresh-token family is revoked, and access tokens
/// of that session stop working at once.
#[utoipa::path(
    tag = "authentication",
    request_body(content = Option<LogoutRequest>),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "the session is revoked"),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
    )
)]
#[post("/v1/auth/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: Option<web::Json<LogoutRequest>>,
) -> Result<HttpResponse, ApiError> {
    state.check_auth_rate(&req).await?;
    let presented = body.as_ref().and_then(|b| b.refresh_token.as_deref());
    sessions::logout(
        &state.db,
        user.id,
        user.session,
        presented,
        state.client_ip(&req),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
