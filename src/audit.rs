//! The audit trail (security.md): an append-only table and the `security`
//! log target. Never a token or a secret; at most a short hash prefix.

use serde_json::Value;
use uuid::Uuid;

use crate::http::request_id::current_request_id;

/// What happened; the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    SignIn,
    Refresh,
    RefreshReuse,
    Logout,
    RoleChange,
    Forbidden,
    AccountDeletion,
    WebhookSignature,
    RateLimited,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::SignIn => "sign_in",
            AuditKind::Refresh => "refresh",
            AuditKind::RefreshReuse => "refresh_reuse",
            AuditKind::Logout => "logout",
            AuditKind::RoleChange => "role_change",
            AuditKind::Forbidden => "forbidden",
            AuditKind::AccountDeletion => "account_deletion",
            AuditKind::WebhookSignature => "webhook_signature",
            AuditKind::RateLimited => "rate_limited",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Who did it (`None`: anonymous or the command line).
    pub actor: Option<Uuid>,
    /// Whom it concerns.
    pub subject: Option<Uuid>,
    pub client_ip: Option<String>,
    pub details: Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, outcome: Outcome) -> Self {
        AuditEvent {
            kind,
            outcome,
            reason: None,
            actor: None,
            subject: None,
            client_ip: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn actor(mut self, actor: Uuid) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn subject(mut self, subject: Uuid) -> Self {
        self.subject = Some(subject);
        self
    }

    pub fn client_ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.client_ip = ip.map(|ip| ip.to_string());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Writes the event to the `security` log target and the audit table, on
/// `executor` (a transaction when the event belongs to one). A failed insert
/// is logged and returned.
pub async fn record<'e, E>(executor: E, event: AuditEvent) -> Result<(), sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let request_id = current_request_id();
    tracing::info!(
        target: "security",
        kind = event.kind.as_str(),
        outcome = event.outcome.as_str(),
        reason = event.reason.as_deref(),
        request_id = request_id.as_deref(),
        actor = event.actor.map(|u| u.to_string()),
        subject = event.subject.map(|u| u.to_string()),
        client_ip = event.client_ip.as_deref(),
        details = %event.details,
        "audit"
    );
    let result = sqlx::query!(
        r#"INSERT INTO audit_event
               (kind, outcome, reason, request_id, actor_user_id, subject_user_id, client_ip, details)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        event.kind.as_str(),
        event.outcome.as_str(),
        event.reason,
        request_id,
        event.actor,
        event.subject,
        event.client_ip,
        event.details,
    )
    .execute(executor)
    .await;
    if let Err(e) = &result {
        tracing::error!(target: "security", error = %e, kind = event.kind.as_str(), "audit write failed");
    }
    result.map(|_| ())
}

/// [`record`] on the pool, for events outside any transaction; a failure is
/// logged (by `record`) and does not change the answer.
pub async fn record_best_effort(db: &sqlx::PgPool, event: AuditEvent) {
    let _ = record(db, event).await;
}

/// A short, non-reversible prefix of SHA-256, to correlate without storing
/// the value (e.g. a presented token).
pub fn fingerprint(value: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(value.as_bytes());
    hex::encode(&digest[..4])
}
