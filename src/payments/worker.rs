//! The outbox worker: carries out the `payment_task` rows that transitions
//! wrote (cancel a PaymentIntent, refund an entry). A task is claimed with
//! `SELECT … FOR UPDATE SKIP LOCKED` in a short transaction that also
//! pushes its `next_attempt_at` out by a lease, so that several instances
//! never work on one task at once and a worker killed mid-call leaves a task
//! that is retried when the lease ends. The Stripe call carries the task's
//! idempotency key (derived from the entry), so a retry never refunds twice.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::stripe::RefundState;
use super::{GatewayError, PaymentGateway};
use crate::actors::{ActorError, Execute, Registry};
use crate::config::PaymentSettings;
use crate::domain::Command;
use crate::metrics::Metrics;

#[derive(Debug)]
struct Task {
    id: Uuid,
    contest_id: Uuid,
    entry_id: Uuid,
    kind: String,
    attempts: i32,
    payment_intent_id: Option<String>,
}

enum Done {
    Finished,
    /// The refund succeeded: the entry can be marked refunded.
    Refunded(String),
}

pub fn spawn(
    db: PgPool,
    registry: Registry,
    gateway: Arc<PaymentGateway>,
    metrics: Arc<Metrics>,
    settings: PaymentSettings,
) {
    if gateway.client().is_none() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(settings.worker_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = pass(&db, &registry, &gateway, &metrics, &settings).await {
                tracing::warn!(error = %e, "payment worker pass failed");
            }
        }
    });
}

async fn pass(
    db: &PgPool,
    registry: &Registry,
    gateway: &PaymentGateway,
    metrics: &Metrics,
    settings: &PaymentSettings,
) -> Result<(), sqlx::Error> {
    let pending: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM payment_task WHERE status = 'pending'"#
    )
    .fetch_one(db)
    .await?;
    metrics.payment_tasks_pending.set(pending);
    if pending == 0 {
        return Ok(());
    }
    let tasks = sqlx::query_as!(
        Task,
        r#"UPDATE payment_task t
           SET attempts = t.attempts + 1,
               next_attempt_at = now() + make_interval(secs => $2),
               updated_at = now()
           FROM (SELECT id FROM payment_task
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $1
                 FOR UPDATE SKIP LOCKED) due,
                entry e
           WHERE t.id = due.id AND e.id = t.entry_id
           RETURNING t.id, t.contest_id, t.entry_id, t.kind, t.attempts, e.payment_intent_id"#,
        i64::from(settings.worker_batch),
        settings.worker_lease_secs as f64,
    )
    .fetch_all(db)
    .await?;
    for task in tasks {
        let outcome = run(gateway, &task).await;
        // A refund that succeeded is done once the entry is marked
        // refunded too; if that fails the task is retried (the refund call
        // replays under its idempotency key).
        let outcome = match outcome {
            Ok(Done::Refunded(payment_intent_id)) => {
                let command = Command::Refunded { payment_intent_id };
                match registry
                    .execute(task.contest_id, Execute::new(command, None))
                    .await
                {
                    Ok(_) | Err(ActorError::Domain(_)) => Ok(Done::Finished),
                    Err(e) => Err(GatewayError::Unavailable(format!("marking refunded: {e}"))),
                }
            }
            other => other,
        };
        match outcome {
            Ok(_) => {
                sqlx::query!(
                    "UPDATE payment_task SET status = 'done', last_error = NULL, updated_at = now() WHERE id = $1",
                    task.id
                )
                .execute(db)
                .await?;
                tracing::info!(task_id = %task.id, entry_id = %task.entry_id, kind = %task.kind, "payment task done");
            }
            Err(e) => {
                metrics.payment_task_failures.inc();
                let permanent = matches!(e, GatewayError::Rejected { .. })
                    || task.attempts >= settings.max_attempts as i32;
                let backoff = backoff_secs(task.attempts);
                tracing::warn!(
                    task_id = %task.id, entry_id = %task.entry_id, kind = %task.kind,
                    attempts = task.attempts, permanent, error = %e,
                    "payment task failed"
                );
                sqlx::query!(
                    r#"UPDATE payment_task
                       SET status = CASE WHEN $2 THEN 'failed' ELSE 'pending' END,
                           last_error = $3,
                           next_attempt_at = now() + make_interval(secs => $4),
                           updated_at = now()
                       WHERE id = $1"#,
                    task.id,
                    permanent,
                    e.to_string(),
                    backoff,
                )
                .execute(db)
                .await?;
            }
        }
    }
    Ok(())
}

/// 1 s, 2 s, 4 s … at most 10 minutes.
fn backoff_secs(attempts: i32) -> f64 {
    2f64.powi(attempts.clamp(0, 10) - 1).min(600.0)
}

async fn run(gateway: &PaymentGateway, task: &Task) -> Result<Done, GatewayError> {
    let client = gateway
        .client()
        .ok_or_else(|| GatewayError::Unavailable("no payment provider".into()))?;
    let Some(pi) = task.payment_intent_id.as_deref() else {
        // No PaymentIntent was ever made: nothing to cancel or refund.
        return Ok(Done::Finished);
    };
    match task.kind.as_str() {
        "cancel_payment_intent" => match client.cancel_payment_intent(task.entry_id, pi).await {
            Ok(()) => Ok(Done::Finished),
            // Already cancelled, or already paid: then its
            // `payment_intent.succeeded` leads to a refund of its own.
            Err(GatewayError::Rejected { code }) if code == "payment_intent_unexpected_state" => {
                Ok(Done::Finished)
            }
            Err(e) => Err(e),
        },
        "refund" => match client.refund(task.entry_id, pi).await {
            Ok(RefundState::Succeeded) => Ok(Done::Refunded(pi.to_owned())),
            Ok(RefundState::Pending(status)) => {
                tracing::info!(entry_id = %task.entry_id, %status, "refund not final yet: charge.refunded will tell");
                Ok(Done::Finished)
            }
            Err(GatewayError::Rejected { code }) if code == "charge_already_refunded" => {
                Ok(Done::Refunded(pi.to_owned()))
            }
            Err(e) => Err(e),
        },
        other => Err(GatewayError::Rejected {
            code: format!("unknown task kind {other}"),
        }),
    }
}
