//! Durable timers: every `actors.sweep_interval_ms` the sweeper asks
//! Postgres for contests whose `next_deadline` (lock at `locks_at`, hold
//! expiry) has passed and sends each a tick, activating its actor if needed.
//! So a contest whose actor is idle, or whose server restarted, still locks
//! and releases holds within a few seconds. Active actors also arm their own
//! timers; a tick with nothing due changes nothing, so several sweepers (one
//! per instance) are harmless.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use super::contest::Execute;
use super::registry::Registry;
use crate::domain::Command;
use crate::store;

/// At most this many contests are ticked per sweep.
const BATCH: i64 = 500;

pub fn spawn(registry: Registry, db: PgPool, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let due = match store::contests::due(&db, Utc::now(), BATCH).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "sweeper could not read due deadlines");
                    continue;
                }
            };
            let ticks = due.into_iter().map(|id| {
                let registry = registry.clone();
                async move {
                    if let Err(e) = registry
                        .execute(id, Execute::new(Command::Tick, None))
                        .await
                    {
                        tracing::warn!(contest_id = %id, error = %e, "tick failed");
                    }
                }
            });
            futures_util::future::join_all(ticks).await;
        }
    });
}
