//! Operations: what the contest actors are doing, and the metrics.

use actix_web::dev::Payload;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use crate::actors::registry::ActorInfo;
use crate::auth::access::{self, Action, Relation};
use crate::auth::extract::AuthUser;
use crate::domain::ContestState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::startup::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    pub contest_id: Uuid,
    pub state: ContestState,
    pub version: i64,
    pub mailbox_len: usize,
    pub activated_at: DateTime<Utc>,
    pub last_transition_at: Option<DateTime<Utc>>,
    /// Accepted transitions since this actor started.
    pub transitions: u64,
    /// Restarts of this contest's actor.
    pub restarts: u64,
    /// `running`, `panicked`, `deactivated`, `stopped` or `starting`.
    pub status: &'static str,
}

impl From<ActorInfo> for ActorView {
    fn from(info: ActorInfo) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &info.stats;
        ActorView {
            contest_id: s.contest_id,
            state: s.state(),
            version: s.version(),
            mailbox_len: s.mailbox.load(Relaxed),
            activated_at: s.activated_at,
            last_transition_at: s.last_transition_at(),
            transitions: s.transitions.load(Relaxed),
            restarts: s.restarts,
            status: if info.alive {
                s.status().as_str()
            } else {
                "stopped"
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActorsView {
    pub active: usize,
    pub restarts_total: u64,
    pub actors: Vec<ActorView>,
}

fn operate(user: &AuthUser) -> Result<(), ApiError> {
    access::check(&user.roles, Relation::default(), Action::Operate, false)
}

/// Every active contest actor (ops, admins).
#[utoipa::path(
    tag = "operations",
    security(("bearer" = [])),
    responses((status = 200, body = ActorsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
#[get("/ops/actors")]
pub async fn actors(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    operate(&user)?;
    let mut actors: Vec<ActorView> = state
        .registry
        .actors()
        .into_iter()
        .map(ActorView::from)
        .collect();
    actors.sort_by_key(|a| std::cmp::Reverse(a.last_transition_at));
    Ok(HttpResponse::Ok().json(ActorsView {
        active: actors.len(),
        restarts_total: state.registry.restarts_total(),
        actors,
    }))
}

/// One contest's actor, or 404 when it is not active.
#[utoipa::path(
    tag = "operations",
    security(("bearer" = [])),
    params(("contest_id" = Uuid, Path)),
    responses((status = 200, body = ActorView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/ops/actors/{contest_id}")]
pub async fn actor(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    operate(&user)?;
    let info = state.registry.actor(*path).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound).with_message("no active actor for this contest")
    })?;
    Ok(HttpResponse::Ok().json(ActorView::from(info)))
}

/// Prometheus metrics (ops, admins, or `Authorization: Bearer
/// <METRICS_TOKEN>`).
#[utoipa::path(
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let scraper = state.settings.metrics.token.as_ref().is_some_and(|token| {
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes()))
            })
    });
    if !scraper {
        let user = AuthUser::from_request(&req, &mut Payload::None).await?;
        operate(&user)?;
    }
    state.registry.refresh_gauges();
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
