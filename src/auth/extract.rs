//! The bearer-token extractor. Every protected route takes an
//! [`AuthUser`]; roles and the session's liveness are read from the database
//! on each request, so a demotion, a logout or a deletion takes effect on the
//! very next request with the same token.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use uuid::Uuid;

use super::roles::{Role, Roles};
use super::tokens::TokenRejection;
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store;

/// The signed-in caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub roles: Roles,
    /// The session (refresh-token family) of the presented token.
    pub session: Uuid,
}

/// Put in the request's extensions once the caller is known, for the audit
/// of `403`s in the edge middleware.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Uuid);

impl AuthUser {
    /// `403 FORBIDDEN` unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.roles.has(role) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Forbidden))
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?
                .clone();
            let token = bearer(&req).ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthenticated).with_message("a bearer token is required")
            })?;
            let claims = state.auth.tokens.verify(token).map_err(|e| match e {
                TokenRejection::Expired => ApiError::new(ErrorCode::TokenExpired),
                TokenRejection::Invalid(_) => ApiError::new(ErrorCode::Unauthenticated)
                    .with_message("the access token is invalid"),
            })?;
            let context = store::users::auth_context(&state.db, claims.sub, claims.sid)
                .await?
                .filter(|c| c.alive)
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::Unauthenticated).with_message("the session has ended")
                })?;
            req.extensions_mut().insert(Caller(claims.sub));
            let mutation = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
            if mutation && let Err(limited) = state.auth.limits.check_mutation(claims.sub) {
                return Err(state.rate_limited(&req, limited, Some(claims.sub)).await);
            }
            Ok(AuthUser {
                id: claims.sub,
                roles: Roles::from_stored(&context.roles),
                session: claims.sid,
            })
        })
    }
}
