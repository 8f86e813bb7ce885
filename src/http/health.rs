//! `GET /health/live` and `GET /health/ready`.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::startup::AppState;
use crate::store;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    /// Always `"ok"`.
    pub status: &'static str,
}

/// The process is up and serving.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "the process serves", body = HealthStatus))
)]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// The database answers and every migration this build knows is applied.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "ready to serve", body = HealthStatus),
        (status = 503, description = "database down or migrations pending", body = ErrorBody),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let timeout = state.settings.database.ready_timeout();
    match store::check_ready(&state.db, timeout).await {
        Ok(()) => Ok(HttpResponse::Ok().json(HealthStatus { status: "ok" })),
        Err(reason) => {
            tracing::warn!(reason = %reason, "not ready");
            Err(ApiError::new(ErrorCode::ServiceUnavailable)
                .with_message(reason.public_message())
                .with_retry_after(2))
        }
    }
}
