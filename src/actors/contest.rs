//! The contest actor: owns one contest's state and serializes everything
//! that changes it. For each message: decide (pure), apply, persist in one
//! transaction, and only then reply. Writes run under `AtomicResponse`, so no
//! second message of the same contest starts before the write ended; the
//! actor never awaits Stripe.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::stats::{ActorStats, Status};
use crate::domain::{self, Command, Contest, Ctx, DomainError, Entry, Event, Standing};
use crate::metrics::Metrics;
use crate::store;
use crate::store::contests::{ContestRow, Persisted, StripeEventRef};

/// Settings every contest actor shares.
#[derive(Clone)]
pub struct ActorEnv {
    pub db: PgPool,
    pub metrics: Arc<Metrics>,
    pub hold: chrono::Duration,
    pub currencies: Vec<String>,
    pub idle: Duration,
    /// The actix mailbox size (callers are refused before it fills).
    pub mailbox_capacity: usize,
    /// Called when the actor stops, with its generation.
    pub on_stop: Arc<dyn Fn(Uuid, u64) + Send + Sync>,
}

/// A command for the contest, from a user, Stripe or a timer.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Reply, ActorError>")]
pub struct Execute {
    pub command: Command,
    /// Who caused it (none for Stripe and timers).
    pub actor: Option<Uuid>,
    /// `If-Match`: refuse unless the contest is at this version.
    pub expected_version: Option<i64>,
    /// The Stripe event that carries the command, recorded with its effect.
    pub stripe_event: Option<StripeEventRef>,
}

impl Execute {
    pub fn new(command: Command, actor: Option<Uuid>) -> Self {
        Execute {
            command,
            actor,
            expected_version: None,
            stripe_event: None,
        }
    }
}

/// The contest after the command, and what the command did. A summary,
/// not the contest: replies must not copy a contest's thousands of entries.
#[derive(Debug, Clone)]
pub struct Reply {
    pub contest: ContestRow,
    pub standings: Option<Vec<Standing>>,
    /// The entry the command was about (the caller's for a join or a
    /// withdrawal, the PaymentIntent's for a payment event).
    pub entry: Option<Entry>,
    /// Whether the command was an accepted transition (it changed state).
    pub changed: bool,
    pub events: Vec<Event>,
    /// The Stripe event had been applied before: nothing was done.
    pub duplicate: bool,
}

impl Reply {
    fn of(contest: &Contest, command: &Command, changed: bool, events: Vec<Event>) -> Reply {
        let entry = match command {
            Command::Join { user_id, .. } | Command::Withdraw { user_id } => {
                contest.latest_entry_of(*user_id)
            }
            Command::AttachPaymentIntent { entry_id, .. } => contest.entry(*entry_id),
            Command::PaymentSucceeded {
                payment_intent_id, ..
            }
            | Command::PaymentFailed {
                payment_intent_id, ..
            }
            | Command::Refunded { payment_intent_id } => {
                contest.entry_by_payment_intent(payment_intent_id)
            }
            _ => None,
        };
        Reply {
            contest: ContestRow::of(contest),
            standings: contest.standings.clone(),
            entry: entry.cloned(),
            changed,
            events,
            duplicate: false,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ActorError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("stale version: the contest is at {current}")]
    StaleVersion { current: i64 },
    #[error("no such contest")]
    NotFound,
    #[error("the contest is busy or unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

pub struct ContestActor {
    /// `None` only while a write owns the state (the mailbox is paused then).
    contest: Option<Contest>,
    env: ActorEnv,
    stats: Arc<ActorStats>,
    generation: u64,
    last_message: Instant,
    timer: Option<SpawnHandle>,
}

impl ContestActor {
    pub fn new(contest: Contest, env: ActorEnv, stats: Arc<ActorStats>, generation: u64) -> Self {
        stats.observe(&contest);
        ContestActor {
            contest: Some(contest),
            env,
            stats,
            generation,
            last_message: Instant::now(),
            timer: None,
        }
    }

    /// Arms a timer for the contest's next deadline (the sweeper catches
    /// the same deadlines for contests that are not active).
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(deadline) = self.contest.as_ref().and_then(Contest::next_deadline) else {
            return;
        };
        let wait =
            (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(5);
        self.timer = Some(ctx.run_later(wait, |act, ctx| {
            act.timer = None;
            // Counted like any message, since the handler uncounts it.
            act.stats.mailbox.fetch_add(1, Ordering::Relaxed);
            ctx.notify(Execute::new(Command::Tick, None));
        }));
    }
}

impl Actor for ContestActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.env.mailbox_capacity);
        self.stats.set_status(Status::Running);
        self.arm_timer(ctx);
        let idle = self.env.idle;
        ctx.run_interval(
            idle.min(Duration::from_secs(30))
                .max(Duration::from_millis(100)),
            move |act, ctx| {
                if act.last_message.elapsed() >= idle
                    && act.stats.mailbox.load(Ordering::Relaxed) == 0
                {
                    act.stats.set_status(Status::Deactivated);
                    ctx.stop();
                }
            },
        );
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.stats.status() == Status::Running {
            self.stats.set_status(Status::Stopped);
        }
        (self.env.on_stop)(self.stats.contest_id, self.generation);
    }
}

/// Decides `command` and applies its events to `contest` (bumping the
/// version once when there are any). A panic inside is caught.
fn decide_and_apply(
    contest: &mut Contest,
    command: &Command,
    ctx: &Ctx,
    inject_panic: bool,
) -> Result<Result<Vec<Event>, DomainError>, ()> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        if inject_panic {
            panic!("injected panic (test hook)");
        }
        let events = domain::decide(contest, command, ctx)?;
        if !events.is_empty() {
            for event in &events {
                domain::apply(contest, event, ctx.now);
            }
            contest.version += 1;
        }
        Ok(events)
    }))
    .map_err(|_| ())
}

enum WriteOutcome {
    Done(Result<Box<Reply>, ActorError>),
    /// A panic: answer 500, and restart from Postgres.
    Panicked,
    /// The state could not be made to match Postgres again: stop, so that
    /// the next message activates a fresh actor.
    Lost(ActorError),
}

impl Handler<Execute> for ContestActor {
    type Result = AtomicResponse<Self, Result<Reply, ActorError>>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        self.stats.mailbox.fetch_sub(1, Ordering::Relaxed);
        if !matches!(msg.command, Command::Tick) {
            self.last_message = Instant::now();
        }
        let ready = |r| AtomicResponse::new(Box::pin(fut::ready(r)));
        let Some(current) = self.contest.as_ref() else {
            return ready(Err(ActorError::Unavailable));
        };
        if let Some(expected) = msg.expected_version
            && expected != current.version
        {
            return ready(Err(ActorError::StaleVersion {
                current: current.version,
            }));
        }

        let Some(mut contest) = self.contest.take() else {
            return ready(Err(ActorError::Unavailable));
        };
        let env = self.env.clone();
        let inject = self.stats.panic_next.swap(false, Ordering::SeqCst);
        let kind = msg.command.kind();
        let before = contest.version;
        let write = async move {
            // A deadline that passed before its timer fired applies first:
            // nothing is decided against a contest that should already have
            // locked or released its holds.
            let due = contest.next_deadline().is_some_and(|d| d <= Utc::now());
            if due && !matches!(msg.command, Command::Tick) {
                let tick = Execute::new(Command::Tick, None);
                match run_command(&env, contest, &tick, false).await {
                    (Some(caught_up), WriteOutcome::Done(Ok(_))) => contest = caught_up,
                    failed => return failed,
                }
            }
            run_command(&env, contest, &msg, inject).await
        };

        AtomicResponse::new(Box::pin(write.into_actor(self).map(
            move |(contest, outcome), act, ctx| {
                if let Some(contest) = contest {
                    act.stats.observe(&contest);
                    act.contest = Some(contest);
                }
                match outcome {
                    WriteOutcome::Done(result) => {
                        let outcome = match &result {
                            Ok(r) if r.changed => "accepted",
                            Ok(_) => "unchanged",
                            Err(ActorError::Domain(_) | ActorError::StaleVersion { .. }) => "refused",
                            Err(_) => "failed",
                        };
                        act.env.metrics.transition(kind, outcome);
                        let moved = act.contest.as_ref().map_or(0, |c| c.version - before);
                        if moved > 0 {
                            act.stats.transitions.fetch_add(moved as u64, Ordering::Relaxed);
                            act.stats.touch_transition();
                            act.arm_timer(ctx);
                        }
                        result.map(|r| *r)
                    }
                    WriteOutcome::Panicked => {
                        tracing::error!(contest_id = %act.stats.contest_id, transition = kind, "panic while deciding: restarting from Postgres");
                        act.env.metrics.transition(kind, "panicked");
                        act.stats.set_status(Status::Panicked);
                        ctx.stop();
                        Err(ActorError::Internal)
                    }
                    WriteOutcome::Lost(e) => {
                        act.stats.set_status(Status::Stopped);
                        ctx.stop();
                        Err(e)
                    }
                }
            },
        )))
    }
}

/// Decides, applies and persists one command (retrying once after another
/// writer won), returning the state to keep and the outcome.
async fn run_command(
    env: &ActorEnv,
    mut contest: Contest,
    msg: &Execute,
    inject: bool,
) -> (Option<Contest>, WriteOutcome) {
    let command = &msg.command;
    let kind = command.kind();
    let ctx = Ctx {
        now: Utc::now(),
        hold: env.hold,
        currencies: env.currencies.clone(),
    };
    // One retry after another writer (another instance) won.
    for _attempt in 0..2 {
        let events = match decide_and_apply(&mut contest, command, &ctx, inject) {
            Err(()) => {
                return (
                    contest_or_reload(env, contest).await,
                    WriteOutcome::Panicked,
                );
            }
            Ok(Err(e)) => return (Some(contest), WriteOutcome::Done(Err(e.into()))),
            Ok(Ok(events)) => events,
        };
        if events.is_empty() {
            let mut reply = Reply::of(&contest, command, false, events);
            if let Some(event) = &msg.stripe_event {
                match store::contests::record_stripe_event(&env.db, event, Some(contest.id)).await {
                    Ok(first) => reply.duplicate = !first,
                    Err(e) => {
                        tracing::warn!(contest_id = %contest.id, error = %e, "recording a Stripe event failed");
                        return (
                            Some(contest),
                            WriteOutcome::Done(Err(ActorError::Unavailable)),
                        );
                    }
                }
            }
            return (Some(contest), WriteOutcome::Done(Ok(Box::new(reply))));
        }
        let started = Instant::now();
        let written = store::contests::persist(
            &env.db,
            &contest,
            kind,
            &events,
            msg.actor,
            msg.stripe_event.as_ref(),
        )
        .await;
        env.metrics
            .persist_seconds
            .observe(started.elapsed().as_secs_f64());
        match written {
            Ok(Persisted::Written) => {
                tracing::info!(
                    target: "contest",
                    contest_id = %contest.id,
                    version = contest.version,
                    transition = kind,
                    outcome = "accepted",
                    "transition"
                );
                let reply = Reply::of(&contest, command, true, events);
                return (Some(contest), WriteOutcome::Done(Ok(Box::new(reply))));
            }
            Ok(Persisted::Stale) => {
                tracing::info!(contest_id = %contest.id, "stale state: reloading");
                match store::contests::load(&env.db, contest.id).await {
                    Ok(Some(fresh)) => contest = fresh,
                    _ => return (None, WriteOutcome::Lost(ActorError::Unavailable)),
                }
            }
            Ok(Persisted::Duplicate) => {
                // The events were applied in memory only: undo them.
                return match store::contests::load(&env.db, contest.id).await {
                    Ok(Some(fresh)) => {
                        let mut reply = Reply::of(&fresh, command, false, Vec::new());
                        reply.duplicate = true;
                        (Some(fresh), WriteOutcome::Done(Ok(Box::new(reply))))
                    }
                    _ => (None, WriteOutcome::Lost(ActorError::Unavailable)),
                };
            }
            Err(e) => {
                tracing::warn!(contest_id = %contest.id, error = %e, "persisting failed");
                let reloaded = store::contests::load(&env.db, contest.id)
                    .await
                    .ok()
                    .flatten();
                return match reloaded {
                    Some(fresh) => (
                        Some(fresh),
                        WriteOutcome::Done(Err(ActorError::Unavailable)),
                    ),
                    None => (None, WriteOutcome::Lost(ActorError::Unavailable)),
                };
            }
        }
    }
    (
        Some(contest),
        WriteOutcome::Done(Err(ActorError::Unavailable)),
    )
}

/// After a panic the in-memory state may be half-applied: reload it.
async fn contest_or_reload(env: &ActorEnv, contest: Contest) -> Option<Contest> {
    store::contests::load(&env.db, contest.id)
        .await
        .ok()
        .flatten()
}
