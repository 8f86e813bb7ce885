//! The contest actor: owns one contest's state and serializes everything
//! that changes it. It never awaits Stripe.
//!
//! **Group commit.** Each command is decided (pure) and applied to the
//! in-memory state as its message is handled, against the state that
//! includes the commands before it; its reply is parked. Once the mailbox
//! has been drained (actix runs a `notify`d message only then), one `Flush`
//! persists every parked transition in one transaction, each with its own
//! version and transition-log row, and only after the commit answers the
//! callers. A lone command is flushed at once: nothing waits for company.
//! The flush runs under `AtomicResponse`, so no message is handled while it
//! writes; a batch is at most `actors.max_batch` commands. A failed commit
//! fails the whole batch (`503`) and reloads the state from Postgres; a
//! commit that lost to another writer (another instance) reloads, decides
//! the batch again, and retries once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::stats::{ActorStats, Status};
use crate::domain::{self, Command, Contest, Ctx, DomainError, Entry, Event, Standing};
use crate::metrics::Metrics;
use crate::store;
use crate::store::contests::{BatchPersisted, ContestRow, StripeEventRef, Transition};

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
    /// The most commands one commit carries.
    pub max_batch: usize,
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

type Answer = oneshot::Sender<Result<Reply, ActorError>>;

/// A decided command waiting for its commit.
struct Pending {
    msg: Execute,
    answer: Option<Answer>,
    result: Result<Reply, ActorError>,
    /// The transition it made, if it was accepted.
    transition: Option<Transition>,
}

pub struct ContestActor {
    /// `None` only while a flush owns the state (the mailbox is paused then).
    contest: Option<Contest>,
    pending: Vec<Pending>,
    /// A command panicked: the in-memory state cannot be trusted; the next
    /// flush fails the batch and stops the actor (the registry restarts it).
    broken: bool,
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
            pending: Vec::new(),
            broken: false,
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

    fn ctx(&self) -> Ctx {
        Ctx {
            now: Utc::now(),
            hold: self.env.hold,
            currencies: self.env.currencies.clone(),
        }
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
                    && act.pending.is_empty()
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
        // Whatever was parked can no longer be committed here.
        for p in self.pending.drain(..) {
            if let Some(answer) = p.answer {
                let _ = answer.send(Err(ActorError::Unavailable));
            }
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

fn transition_of(
    contest: &Contest,
    msg: &Execute,
    events: &[Event],
    at: chrono::DateTime<Utc>,
) -> Transition {
    Transition {
        version: contest.version,
        kind: msg.command.kind(),
        events: events.to_vec(),
        actor: msg.actor,
        at,
        stripe_event: msg.stripe_event.clone(),
    }
}

/// A message, its answer, and the transition it made (if accepted).
type Decided = (Execute, Result<Reply, ActorError>, Option<Transition>);

/// Decides one message against `contest` (after a due tick, if any) and
/// returns what is to be committed and answered. `Err(())`: a panic.
fn decide_message(
    contest: &mut Contest,
    msg: &Execute,
    ctx: &Ctx,
    inject_panic: bool,
) -> Result<Vec<Decided>, ()> {
    let mut out = Vec::with_capacity(1);
    if let Some(expected) = msg.expected_version
        && expected != contest.version
    {
        let stale = Err(ActorError::StaleVersion {
            current: contest.version,
        });
        out.push((msg.clone(), stale, None));
        return Ok(out);
    }
    // A deadline that passed before its timer fired applies first: nothing
    // is decided against a contest that should already have locked or
    // released its holds.
    let due = contest.next_deadline().is_some_and(|d| d <= ctx.now);
    if due && !matches!(msg.command, Command::Tick) {
        let tick = Execute::new(Command::Tick, None);
        if let Ok(events) = decide_and_apply(contest, &tick.command, ctx, false)?
            && !events.is_empty()
        {
            let transition = transition_of(contest, &tick, &events, ctx.now);
            let reply = Reply::of(contest, &tick.command, true, events);
            out.push((tick, Ok(reply), Some(transition)));
        }
    }
    match decide_and_apply(contest, &msg.command, ctx, inject_panic)? {
        Err(e) => out.push((msg.clone(), Err(e.into()), None)),
        Ok(events) if events.is_empty() => {
            let reply = Reply::of(contest, &msg.command, false, events);
            out.push((msg.clone(), Ok(reply), None));
        }
        Ok(events) => {
            let transition = transition_of(contest, msg, &events, ctx.now);
            let reply = Reply::of(contest, &msg.command, true, events);
            out.push((msg.clone(), Ok(reply), Some(transition)));
        }
    }
    Ok(out)
}

impl Handler<Execute> for ContestActor {
    type Result = ResponseFuture<Result<Reply, ActorError>>;

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        self.stats.mailbox.fetch_sub(1, Ordering::Relaxed);
        if !matches!(msg.command, Command::Tick) {
            self.last_message = Instant::now();
        }
        let (tx, rx) = oneshot::channel();
        let inject = self.stats.panic_next.swap(false, Ordering::SeqCst);
        let decision_ctx = self.ctx();
        match self.contest.as_mut() {
            None => {
                let _ = tx.send(Err(ActorError::Unavailable));
            }
            Some(_) if self.broken => {
                let _ = tx.send(Err(ActorError::Unavailable));
            }
            Some(contest) => match decide_message(contest, &msg, &decision_ctx, inject) {
                Err(()) => {
                    tracing::error!(contest_id = %self.stats.contest_id, transition = msg.command.kind(), "panic while deciding: restarting from Postgres");
                    self.env.metrics.transition(msg.command.kind(), "panicked");
                    self.broken = true;
                    self.pending.push(Pending {
                        msg,
                        answer: Some(tx),
                        result: Err(ActorError::Internal),
                        transition: None,
                    });
                }
                Ok(decided) => {
                    let last = decided.len().saturating_sub(1);
                    let mut tx = Some(tx);
                    for (i, (msg, result, transition)) in decided.into_iter().enumerate() {
                        self.pending.push(Pending {
                            msg,
                            answer: if i == last { tx.take() } else { None },
                            result,
                            transition,
                        });
                    }
                }
            },
        }
        if self.pending.len() >= self.env.max_batch {
            // The batch is full: write it before taking the next message.
            let flush = self.flush();
            ctx.wait(flush);
        } else if !self.pending.is_empty() {
            ctx.notify(Flush);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(ActorError::Unavailable)) })
    }
}

/// Commits what is parked (see the module comment).
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for ContestActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(self.flush())
    }
}

type FlushResult = (Option<Contest>, Vec<Pending>, bool);

impl ContestActor {
    /// The write of the parked batch, as an actor future.
    fn flush(&mut self) -> ResponseActFuture<Self, ()> {
        let batch = std::mem::take(&mut self.pending);
        if batch.is_empty() {
            return Box::pin(fut::ready(()));
        }
        let broken = std::mem::take(&mut self.broken);
        let contest = self.contest.take();
        let env = self.env.clone();
        let write = async move { write_batch(&env, contest, batch, broken).await };
        Box::pin(write.into_actor(self).map(
            move |(contest, batch, stop): FlushResult, act, ctx| {
                let mut moved = 0;
                for p in batch {
                    let outcome = match &p.result {
                        Ok(r) if r.changed => "accepted",
                        Ok(_) => "unchanged",
                        Err(ActorError::Domain(_) | ActorError::StaleVersion { .. }) => "refused",
                        Err(ActorError::Internal) => "panicked",
                        Err(_) => "failed",
                    };
                    if outcome != "panicked" {
                        act.env.metrics.transition(p.msg.command.kind(), outcome);
                    }
                    if outcome == "accepted" {
                        moved += 1;
                    }
                    if let Some(answer) = p.answer {
                        let _ = answer.send(p.result);
                    }
                }
                if let Some(contest) = contest {
                    act.stats.observe(&contest);
                    act.contest = Some(contest);
                }
                if moved > 0 {
                    act.stats.transitions.fetch_add(moved, Ordering::Relaxed);
                    act.stats.touch_transition();
                }
                if stop || act.contest.is_none() {
                    if stop {
                        act.stats.set_status(Status::Panicked);
                    }
                    ctx.stop();
                } else {
                    act.arm_timer(ctx);
                }
            },
        ))
    }
}

/// Sets every parked command's answer to `error` (its commit failed).
fn fail_all(batch: &mut [Pending], error: ActorError) {
    for p in batch.iter_mut() {
        if p.result.is_ok() || p.transition.is_some() {
            p.result = Err(error.clone());
        }
        p.transition = None;
    }
}

/// Persists the batch; on a lost race, reloads, decides it again and
/// retries once. Returns the state to keep, the answered batch, and whether
/// the actor must stop (a panic, or a state it could not reload).
async fn write_batch(
    env: &ActorEnv,
    contest: Option<Contest>,
    mut batch: Vec<Pending>,
    broken: bool,
) -> FlushResult {
    let Some(mut contest) = contest else {
        fail_all(&mut batch, ActorError::Unavailable);
        return (None, batch, true);
    };
    if broken {
        // A command panicked: nothing decided since is trusted.
        for p in batch.iter_mut() {
            if !matches!(p.result, Err(ActorError::Internal)) {
                p.result = Err(ActorError::Unavailable);
            }
            p.transition = None;
        }
        return (None, batch, true);
    }
    for attempt in 0..2 {
        let records = batch_records(&batch);
        if records.is_empty() {
            // Refusals and no-ops only: nothing to write, answer at once.
            return (Some(contest), batch, false);
        }
        let started = Instant::now();
        let written = store::contests::persist_batch(&env.db, &contest, &records).await;
        env.metrics
            .persist_seconds
            .observe(started.elapsed().as_secs_f64());
        match written {
            Ok(BatchPersisted::Written { duplicates }) => {
                for (i, duplicate) in duplicates {
                    if let Some(Ok(reply)) = batch.get_mut(i).map(|p| &mut p.result) {
                        reply.duplicate = duplicate;
                    }
                }
                for p in &batch {
                    if let Some(t) = &p.transition {
                        tracing::info!(
                            target: "contest",
                            contest_id = %contest.id,
                            version = t.version,
                            transition = t.kind,
                            outcome = "accepted",
                            "transition"
                        );
                    }
                }
                return (Some(contest), batch, false);
            }
            Ok(BatchPersisted::Lost) if attempt == 0 => {
                tracing::info!(contest_id = %contest.id, "another writer won: reloading and deciding again");
                let Ok(Some(fresh)) = store::contests::load(&env.db, contest.id).await else {
                    fail_all(&mut batch, ActorError::Unavailable);
                    return (None, batch, false);
                };
                contest = fresh;
                batch = redecide(&mut contest, batch, env);
            }
            Ok(BatchPersisted::Lost) => break,
            Err(e) => {
                tracing::warn!(contest_id = %contest.id, error = %e, "committing a batch failed");
                fail_all(&mut batch, ActorError::Unavailable);
                let fresh = store::contests::load(&env.db, contest.id)
                    .await
                    .ok()
                    .flatten();
                return (fresh, batch, false);
            }
        }
    }
    fail_all(&mut batch, ActorError::Unavailable);
    let fresh = store::contests::load(&env.db, contest.id)
        .await
        .ok()
        .flatten();
    (fresh, batch, false)
}

/// Decides the batch's messages again against a fresh state.
fn redecide(contest: &mut Contest, batch: Vec<Pending>, env: &ActorEnv) -> Vec<Pending> {
    let ctx = Ctx {
        now: Utc::now(),
        hold: env.hold,
        currencies: env.currencies.clone(),
    };
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        // Catch-up ticks are decided again when due.
        if p.answer.is_none() && matches!(p.msg.command, Command::Tick) && p.transition.is_some() {
            continue;
        }
        match decide_message(contest, &p.msg, &ctx, false) {
            Ok(decided) => {
                let last = decided.len().saturating_sub(1);
                let mut answer = p.answer;
                for (i, (msg, result, transition)) in decided.into_iter().enumerate() {
                    out.push(Pending {
                        msg,
                        answer: if i == last { answer.take() } else { None },
                        result,
                        transition,
                    });
                }
            }
            Err(()) => out.push(Pending {
                msg: p.msg,
                answer: p.answer,
                result: Err(ActorError::Internal),
                transition: None,
            }),
        }
    }
    out
}

/// What the store writes for a batch: each transition, and each no-op
/// Stripe event (recorded for deduplication).
fn batch_records(batch: &[Pending]) -> Vec<store::contests::BatchItem<'_>> {
    batch
        .iter()
        .enumerate()
        .filter_map(
            |(i, p)| match (&p.transition, &p.msg.stripe_event, &p.result) {
                (Some(t), _, _) => Some(store::contests::BatchItem::Transition(t)),
                (None, Some(event), Ok(_)) => Some(store::contests::BatchItem::Event(i, event)),
                _ => None,
            },
        )
        .collect()
}
