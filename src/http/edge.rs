//! The outermost middleware: request id, one log line per request, the
//! security headers of security.md, and the api.md error schema for every
//! error response, including the ones actix-web produces itself.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument as _;

use super::request_id::{self, REQUEST_ID_HEADER};
use crate::audit::{self, AuditEvent, AuditKind, Outcome};
use crate::auth::extract::Caller;
use crate::error::{ApiError, ApiErrorRendered, ErrorCode};
use crate::startup::AppState;
use actix_web::HttpMessage as _;

/// What the edge middleware needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Send `Strict-Transport-Security` (TLS terminates in front of us).
    pub hsts: bool,
}

pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id::from_request(req.request());
    let hsts = req
        .app_data::<web::Data<EdgeConfig>>()
        .is_some_and(|c| c.hsts);
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method);

    // No clone of the request may live across `next.call`: the router needs
    // to own it (it panics on a shared `HttpRequest`). Handlers' errors are
    // already responses here; only a middleware inside this one could fail,
    // and there is none.
    let mut res = request_id::scope(id.clone(), async {
        next.call(req)
            .await
            .map(|res| normalize_error(res.map_into_boxed_body()))
    })
    .instrument(span)
    .await?;

    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    set_security_headers(headers, hsts);

    if res.status() == actix_web::http::StatusCode::FORBIDDEN {
        audit_forbidden(&res).await;
    }

    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let elapsed = started.elapsed();
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state
            .metrics
            .http(method.as_str(), &route, status, elapsed.as_secs_f64());
    }
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    tracing::info!(
        target: "http",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        latency_ms,
        "request served"
    );
    Ok(res)
}

/// An error response that did not come from [`ApiError`] (actix-web's own
/// 404, 405, 413, …) gets the api.md body for its status.
fn normalize_error(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        || res
            .response()
            .extensions()
            .get::<ApiErrorRendered>()
            .is_some()
    {
        return res;
    }
    let code = ErrorCode::for_status(status);
    let mut err = ApiError::new(code);
    if let Some(allow) = res
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
    {
        err = err.with_allow(allow.to_owned());
    }
    let mut rendered = actix_web::ResponseError::error_response(&err);
    // Keep the status actix chose when it has no code of its own (e.g. 408).
    *rendered.status_mut() = status;
    res.into_response(rendered)
}

fn set_security_headers(headers: &mut header::HeaderMap, hsts: bool) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
}

/// Every `403` is audited, whichever route refused.
async fn audit_forbidden(res: &ServiceResponse<BoxBody>) {
    let req = res.request();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return;
    };
    let mut event = AuditEvent::new(AuditKind::Forbidden, Outcome::Failure)
        .client_ip(state.client_ip(req))
        .details(serde_json::json!({
            "method": req.method().as_str(),
            "route": req.match_pattern(),
        }));
    if let Some(Caller(user)) = req.extensions().get::<Caller>().copied() {
        event = event.actor(user);
    }
    audit::record_best_effort(&state.db, event).await;
}
