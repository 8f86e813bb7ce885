//! The one error type at the HTTP boundary and the closed set of error codes
//! of api.md. Every non-2xx response of the service has the body
//! `{"error": {"code", "message", "request_id", "details"?}}`.
//!
//! Server faults (`sqlx::Error`, `anyhow::Error`) become `INTERNAL` (or
//! `SERVICE_UNAVAILABLE` when the database cannot be reached): the cause is
//! logged once, under the request id, and never sent to the client.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;

use crate::http::request_id::current_request_id;

/// The closed, documented set of error codes (api.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidRequest,
    ValidationFailed,
    Unauthenticated,
    TokenExpired,
    AppleTokenInvalid,
    RefreshTokenInvalid,
    RefreshTokenReused,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    InvalidTransition,
    ContestFull,
    AlreadyEntered,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    WebhookSignatureInvalid,
    Internal,
    PaymentProviderUnavailable,
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, for documentation and the test that checks each is used.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidRequest,
        ErrorCode::ValidationFailed,
        ErrorCode::Unauthenticated,
        ErrorCode::TokenExpired,
        ErrorCode::AppleTokenInvalid,
        ErrorCode::RefreshTokenInvalid,
        ErrorCode::RefreshTokenReused,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InvalidTransition,
        ErrorCode::ContestFull,
        ErrorCode::AlreadyEntered,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::WebhookSignatureInvalid,
        ErrorCode::Internal,
        ErrorCode::PaymentProviderUnavailable,
        ErrorCode::ServiceUnavailable,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::WebhookSignatureInvalid => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unauthenticated
            | ErrorCode::TokenExpired
            | ErrorCode::AppleTokenInvalid
            | ErrorCode::RefreshTokenInvalid
            | ErrorCode::RefreshTokenReused => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidTransition
            | ErrorCode::ContestFull
            | ErrorCode::AlreadyEntered
            | ErrorCode::IdempotencyKeyReused => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::PaymentProviderUnavailable => StatusCode::BAD_GATEWAY,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code for a bare status produced outside our handlers (actix's own
    /// responses), so that they too answer in the api.md schema.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status.as_u16() {
            400 => ErrorCode::InvalidRequest,
            401 => ErrorCode::Unauthenticated,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::InvalidTransition,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            422 => ErrorCode::ValidationFailed,
            429 => ErrorCode::RateLimited,
            502 => ErrorCode::PaymentProviderUnavailable,
            503 => ErrorCode::ServiceUnavailable,
            s if s < 500 => ErrorCode::InvalidRequest,
            _ => ErrorCode::Internal,
        }
    }

    /// A short, generic message for the code.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "the request is malformed",
            ErrorCode::ValidationFailed => "a field breaks a rule",
            ErrorCode::Unauthenticated => "authentication required",
            ErrorCode::TokenExpired => "the access token has expired",
            ErrorCode::AppleTokenInvalid => "the Apple identity token is invalid",
            ErrorCode::RefreshTokenInvalid => "the refresh token is invalid",
            ErrorCode::RefreshTokenReused => "the refresh token was already used",
            ErrorCode::Forbidden => "not allowed",
            ErrorCode::NotFound => "not found",
            ErrorCode::MethodNotAllowed => "method not allowed on this route",
            ErrorCode::InvalidTransition => "the current state does not allow this action",
            ErrorCode::ContestFull => "no seats left",
            ErrorCode::AlreadyEntered => "already entered",
            ErrorCode::IdempotencyKeyReused => "the idempotency key was used with another request",
            ErrorCode::PayloadTooLarge => "the request body is too large",
            ErrorCode::UnsupportedMediaType => "the request body must be application/json",
            ErrorCode::RateLimited => "too many requests",
            ErrorCode::WebhookSignatureInvalid => "the webhook signature is invalid",
            ErrorCode::Internal => "internal error",
            ErrorCode::PaymentProviderUnavailable => "the payment provider is unavailable",
            ErrorCode::ServiceUnavailable => "the service is temporarily unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The wire name, from serde, so there is one spelling of each code.
        match serde_json::to_value(self) {
            Ok(Value::String(s)) => f.write_str(&s),
            _ => write!(f, "{self:?}"),
        }
    }
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    details: Option<Value>,
    retry_after_secs: Option<u64>,
    allow: Option<String>,
    /// The server-side cause, logged and never sent.
    cause: Option<anyhow::Error>,
}

/// The body of every error response, as documented in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// Marks a response whose body is already in the api.md schema, so the
/// outermost middleware leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct ApiErrorRendered;

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            message: Cow::Borrowed(code.default_message()),
            details: None,
            retry_after_secs: None,
            allow: None,
            cause: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn with_allow(mut self, methods: String) -> Self {
        self.allow = Some(methods);
        self
    }

    /// A server fault: logged with its cause, answered `INTERNAL`.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ApiError {
            cause: Some(cause.into()),
            ..ApiError::new(ErrorCode::Internal)
        }
    }

    /// The database could not be reached in time: `503` with `Retry-After`.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        ApiError {
            cause: Some(cause.into()),
            ..ApiError::new(ErrorCode::ServiceUnavailable).with_retry_after(1)
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// `422 VALIDATION_FAILED` naming the offending fields.
    pub fn validation(fields: &[(&str, &str)]) -> Self {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(f, why)| ((*f).to_owned(), Value::String((*why).to_owned())))
            .collect();
        ApiError::new(ErrorCode::ValidationFailed)
            .with_details(serde_json::json!({ "fields": map }))
    }

    pub fn body(&self, request_id: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.to_string(),
                request_id,
                details: self.details.clone(),
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id().unwrap_or_default();
        if let Some(cause) = &self.cause {
            tracing::error!(
                request_id = %request_id,
                code = %self.code,
                error = format!("{cause:#}"),
                "request failed: {cause:#}"
            );
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            res.insert_header((header::ALLOW, allow));
        }
        let mut res = res.json(self.body(request_id));
        res.extensions_mut().insert(ApiErrorRendered);
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::unavailable(e)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(e)
    }
}
