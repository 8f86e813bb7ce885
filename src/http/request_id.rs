//! The request id: echoed from `x-request-id` when the client sent a sane
//! one, generated otherwise, and visible to everything that runs while the
//! request is handled (error bodies, logs) through a task-local.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The client's id when it is 1 to 128 of `[A-Za-z0-9._:-]`; a fresh UUID
/// otherwise, so that nothing a client sends can break a log line.
pub fn from_request(req: &HttpRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
