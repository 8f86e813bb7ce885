//! The registry and supervisor of contest actors: a `DashMap` from contest
//! id to the live actor. It activates an actor on demand (single-flight:
//! concurrent requests for a cold contest start one actor), lets it stop
//! after its idle time, and restarts it from Postgres when it panicked or
//! died, counting the restart. Callers get `Unavailable` (503) instead of
//! waiting when a contest's mailbox is over its bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::contest::{ActorEnv, ActorError, ContestActor, Execute, Reply};
use super::stats::{ActorStats, Status};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store;

#[derive(Clone)]
struct Handle {
    addr: Addr<ContestActor>,
    stats: Arc<ActorStats>,
}

struct Slot {
    generation: u64,
    cell: OnceCell<Handle>,
}

struct Inner {
    slots: DashMap<Uuid, Arc<Slot>>,
    /// Restarts per contest, kept across its actors' lives.
    restarts: DashMap<Uuid, u64>,
    restarts_total: AtomicU64,
    next_generation: AtomicU64,
    next_arbiter: AtomicUsize,
    arbiters: Vec<ArbiterHandle>,
    metrics: Arc<Metrics>,
    db: PgPool,
    mailbox_bound: usize,
    max_batch: usize,
    send_timeout: Duration,
    env_template: EnvTemplate,
}

struct EnvTemplate {
    hold: chrono::Duration,
    currencies: Vec<String>,
    idle: Duration,
}

/// A cheap, cloneable handle on the registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

/// One actor as `/ops/actors` shows it.
#[derive(Debug, Clone)]
pub struct ActorInfo {
    pub stats: Arc<ActorStats>,
    pub alive: bool,
}

impl Registry {
    pub fn new(settings: &Settings, db: PgPool, metrics: Arc<Metrics>) -> Registry {
        let count = match settings.actors.arbiters {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let arbiters = (0..count)
            .map(|_| {
                let arbiter = Arbiter::new();
                let handle = arbiter.handle();
                // The thread lives as long as the process; dropping the
                // `Arbiter` value does not stop it.
                drop(arbiter);
                handle
            })
            .collect();
        Registry {
            inner: Arc::new(Inner {
                slots: DashMap::new(),
                restarts: DashMap::new(),
                restarts_total: AtomicU64::new(0),
                next_generation: AtomicU64::new(1),
                next_arbiter: AtomicUsize::new(0),
                arbiters,
                metrics,
                db,
                mailbox_bound: settings.actors.mailbox_bound,
                max_batch: settings.actors.max_batch.max(1),
                send_timeout: Duration::from_millis(settings.actors.send_timeout_ms),
                env_template: EnvTemplate {
                    hold: chrono::Duration::seconds(settings.contests.hold_secs as i64),
                    currencies: settings.contests.currencies.clone(),
                    idle: Duration::from_secs(settings.actors.idle_secs),
                },
            }),
        }
    }

    /// Sends `msg` to the contest's actor, activating it if needed.
    pub async fn execute(&self, contest: Uuid, msg: Execute) -> Result<Reply, ActorError> {
        // One retry when the actor turns out to be dead before we sent.
        for _ in 0..2 {
            let (slot, handle) = self.activate(contest).await?;
            if !handle.addr.connected() {
                self.bury(contest, &slot, &handle);
                continue;
            }
            let queued = handle.stats.mailbox.fetch_add(1, Ordering::Relaxed);
            if queued >= self.inner.mailbox_bound {
                handle.stats.mailbox.fetch_sub(1, Ordering::Relaxed);
                return Err(ActorError::Unavailable);
            }
            let sent =
                tokio::time::timeout(self.inner.send_timeout, handle.addr.send(msg.clone())).await;
            return match sent {
                Ok(Ok(reply)) => reply,
                Ok(Err(MailboxError::Closed)) => {
                    // The actor died with our message: a panic. The message
                    // may or may not have taken effect, so it is not resent.
                    handle.stats.mailbox.fetch_sub(1, Ordering::Relaxed);
                    self.bury(contest, &slot, &handle);
                    Err(ActorError::Internal)
                }
                Ok(Err(MailboxError::Timeout)) | Err(_) => Err(ActorError::Unavailable),
            };
        }
        Err(ActorError::Unavailable)
    }

    /// The live actor of `contest`, loading it from Postgres when there is
    /// none; concurrent callers share one activation.
    async fn activate(&self, contest: Uuid) -> Result<(Arc<Slot>, Handle), ActorError> {
        {
            let slot = self
                .inner
                .slots
                .entry(contest)
                .or_insert_with(|| {
                    Arc::new(Slot {
                        generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
                        cell: OnceCell::new(),
                    })
                })
                .clone();
            let result = slot
                .cell
                .get_or_try_init(|| self.start(contest, slot.generation))
                .await;
            match result {
                Ok(handle) => Ok((slot.clone(), handle.clone())),
                Err(e) => {
                    self.inner
                        .slots
                        .remove_if(&contest, |_, s| Arc::ptr_eq(s, &slot));
                    Err(e)
                }
            }
        }
    }

    async fn start(&self, contest: Uuid, generation: u64) -> Result<Handle, ActorError> {
        let loaded = store::contests::load(&self.inner.db, contest)
            .await
            .map_err(|e| {
                tracing::warn!(contest_id = %contest, error = %e, "activation failed");
                ActorError::Unavailable
            })?
            .ok_or(ActorError::NotFound)?;
        let restarts = self.inner.restarts.get(&contest).map_or(0, |r| *r);
        let stats = Arc::new(ActorStats::new(contest, restarts));
        let weak = Arc::downgrade(&self.inner);
        let env = ActorEnv {
            db: self.inner.db.clone(),
            metrics: self.inner.metrics.clone(),
            hold: self.inner.env_template.hold,
            currencies: self.inner.env_template.currencies.clone(),
            idle: self.inner.env_template.idle,
            mailbox_capacity: self.inner.mailbox_bound.max(16),
            max_batch: self.inner.max_batch,
            on_stop: Arc::new(move |id, generation| {
                if let Some(inner) = weak.upgrade() {
                    Registry { inner }.forget(id, generation);
                }
            }),
        };
        let index = self.inner.next_arbiter.fetch_add(1, Ordering::Relaxed)
            % self.inner.arbiters.len().max(1);
        let actor_stats = stats.clone();
        let addr = match self.inner.arbiters.get(index) {
            Some(arbiter) => ContestActor::start_in_arbiter(arbiter, move |_| {
                ContestActor::new(loaded, env, actor_stats, generation)
            }),
            None => ContestActor::new(loaded, env, actor_stats, generation).start(),
        };
        self.inner.metrics.activations.inc();
        tracing::info!(contest_id = %contest, restarts, "contest actor activated");
        Ok(Handle { addr, stats })
    }

    /// An actor stopped: drop its slot if it is still the current one.
    fn forget(&self, contest: Uuid, generation: u64) {
        let removed = self
            .inner
            .slots
            .remove_if(&contest, |_, s| s.generation == generation);
        if let Some((_, slot)) = removed
            && let Some(handle) = slot.cell.get()
            && handle.stats.status() == Status::Panicked
        {
            self.count_restart(contest);
        }
    }

    /// An actor found dead (it panicked outside `decide`): drop it and count
    /// the restart that the next activation makes.
    fn bury(&self, contest: Uuid, slot: &Arc<Slot>, handle: &Handle) {
        let removed = self
            .inner
            .slots
            .remove_if(&contest, |_, s| Arc::ptr_eq(s, slot));
        if removed.is_some() {
            handle.stats.set_status(Status::Panicked);
            self.count_restart(contest);
        }
    }

    fn count_restart(&self, contest: Uuid) {
        *self.inner.restarts.entry(contest).or_insert(0) += 1;
        self.inner.restarts_total.fetch_add(1, Ordering::Relaxed);
        self.inner.metrics.restarts.inc();
        tracing::warn!(contest_id = %contest, "contest actor will restart from Postgres");
    }

    pub fn restarts_total(&self) -> u64 {
        self.inner.restarts_total.load(Ordering::Relaxed)
    }

    /// The active actors.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.inner
            .slots
            .iter()
            .filter_map(|slot| slot.cell.get().cloned())
            .map(|h| ActorInfo {
                alive: h.addr.connected(),
                stats: h.stats,
            })
            .collect()
    }

    pub fn actor(&self, contest: Uuid) -> Option<ActorInfo> {
        let slot = self.inner.slots.get(&contest)?.clone();
        let h = slot.cell.get()?.clone();
        Some(ActorInfo {
            alive: h.addr.connected(),
            stats: h.stats,
        })
    }

    /// Test hook: the next command of this contest's active actor panics.
    #[doc(hidden)]
    pub fn inject_panic(&self, contest: Uuid) -> bool {
        match self.actor(contest) {
            Some(info) => {
                info.stats.panic_next.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Stops every idle-or-not actor (graceful shutdown, tests).
    pub fn stop_all(&self) {
        for slot in self.inner.slots.iter() {
            if let Some(h) = slot.cell.get() {
                h.stats.set_status(Status::Deactivated);
                h.addr.do_send(Stop);
            }
        }
    }

    /// Brings the gauges that mirror the registry up to date (at scrape).
    pub fn refresh_gauges(&self) {
        let actors = self.actors();
        self.inner.metrics.actors_active.set(actors.len() as i64);
        let depth: usize = actors
            .iter()
            .map(|a| a.stats.mailbox.load(Ordering::Relaxed))
            .sum();
        self.inner.metrics.mailbox_depth.set(depth as i64);
    }

    /// Messages queued over all actors.
    pub fn mailbox_depth(&self) -> usize {
        self.actors()
            .iter()
            .map(|a| a.stats.mailbox.load(Ordering::Relaxed))
            .sum()
    }
}

/// Stops an actor deliberately.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for ContestActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
