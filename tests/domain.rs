//! The pure contest state machine (`src/domain`) against the contract of
//! lifecycle.md.
//!
//! - A property test drives a contest with random command sequences and
//!   checks the invariants of lifecycle.md after every step (seats, one live
//!   entry per user, confirmation only by an exact payment while open, the
//!   version and the transition log, terminal states, `from` of every status
//!   change), plus a few spec oracles (payments, joins, withdrawals,
//!   settlement) and, at the end of each sequence, invariant 4.
//! - A coverage test runs the same machinery over fixed seeds and asserts that
//!   the generator reaches the interesting states, so the property cannot
//!   silently test nothing.
//! - Unit tests, one per cell of the contest table, per entry transition, per
//!   settlement rule and for `next_deadline()`.
//!
//! Like the actor, the tests bump `contest.version` once per accepted command
//! (one whose `decide` returned events) and keep a transition log
//! `(version, kind)`; a new contest is version 1, logged as "create".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration};
use contest_backend::domain::{
    Command, Contest, ContestDetails, ContestPatch, ContestState, Ctx, DomainError, Entry,
    EntryReason, EntryStatus, Event, Standing, Timestamp, apply, decide,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use uuid::Uuid;

use ContestState::{Cancelled, Draft, Locked, Open, Settled};
use EntryStatus::{Confirmed, Expired, PendingPayment, RefundPending, Refunded, Withdrawn};

// ---------------------------------------------------------------------------
// The world the tests drive: a contest, a clock, a transition log.
// ---------------------------------------------------------------------------

const FEE: i64 = 500;
const HOLD_MINUTES: i64 = 15;
const LOCKS_AFTER_MINUTES: i64 = 60;
/// Users of the property test: `user(0) .. user(USERS - 1)`.
const USERS: u8 = 8;

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap()
}

fn user(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

fn details(fee: i64, capacity: i32) -> ContestDetails {
    ContestDetails {
        title: "Weekly bracket".to_owned(),
        description: String::new(),
        entry_fee_cents: fee,
        currency: "usd".to_owned(),
        capacity,
        locks_at: t0() + Duration::minutes(LOCKS_AFTER_MINUTES),
    }
}

fn standing(user_id: Uuid, rank: i32, prize_cents: i64) -> Standing {
    Standing {
        user_id,
        rank,
        prize_cents,
    }
}

fn status_changed(entry_id: Uuid, from: EntryStatus, to: EntryStatus, r: EntryReason) -> Event {
    Event::EntryStatusChanged {
        entry_id,
        from,
        to,
        reason: r,
    }
}

struct World {
    contest: Contest,
    ctx: Ctx,
    log: Vec<(i64, &'static str)>,
    next_entry: u128,
    next_pi: u32,
}

impl World {
    /// A draft created at `t0()`, locking one hour later.
    fn draft(fee: i64, capacity: i32) -> Self {
        let contest = Contest::new(
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            details(fee, capacity),
            t0(),
        );
        let log = vec![(contest.version, "create")];
        World {
            contest,
            ctx: Ctx {
                now: t0(),
                hold: Duration::minutes(HOLD_MINUTES),
                currencies: vec!["usd".to_owned(), "eur".to_owned()],
            },
            log,
            next_entry: 0,
            next_pi: 0,
        }
    }

    fn open(fee: i64, capacity: i32) -> Self {
        let mut w = World::draft(fee, capacity);
        w.run(Command::Open);
        w
    }

    /// What the actor does: decide, apply, bump the version, log.
    fn try_run(&mut self, command: &Command) -> Result<Vec<Event>, DomainError> {
        let events = decide(&self.contest, command, &self.ctx)?;
        if !events.is_empty() {
            for event in &events {
                apply(&mut self.contest, event, self.ctx.now);
            }
            self.contest.version += 1;
            self.log.push((self.contest.version, command.kind()));
        }
        Ok(events)
    }

    #[track_caller]
    fn run(&mut self, command: Command) -> Vec<Event> {
        match self.try_run(&command) {
            Ok(events) => events,
            Err(e) => panic!("{} was refused: {e:?}", command.kind()),
        }
    }

    fn advance(&mut self, minutes: i64) {
        self.ctx.now += Duration::minutes(minutes);
    }

    fn fresh_entry_id(&mut self) -> Uuid {
        self.next_entry += 1;
        Uuid::from_u128(0xE000_0000 + self.next_entry)
    }

    fn fresh_pi(&mut self) -> String {
        self.next_pi += 1;
        format!("pi_{}", self.next_pi)
    }

    fn join(&mut self, u: u128) -> Result<Vec<Event>, DomainError> {
        let entry_id = self.fresh_entry_id();
        self.try_run(&Command::Join {
            user_id: user(u),
            entry_id,
        })
    }

    /// Joins and returns the new entry's id.
    #[track_caller]
    fn joined(&mut self, u: u128) -> Uuid {
        let events = self.join(u).unwrap();
        match events.as_slice() {
            [Event::EntryCreated { entry }] => entry.id,
            other => panic!("a join made {other:?}"),
        }
    }

    #[track_caller]
    fn attach(&mut self, entry_id: Uuid) -> String {
        let payment_intent_id = self.fresh_pi();
        self.run(Command::AttachPaymentIntent {
            entry_id,
            payment_intent_id: payment_intent_id.clone(),
        });
        payment_intent_id
    }

    /// Joins a paid contest and gets a PaymentIntent: a pending entry.
    #[track_caller]
    fn pending_entry(&mut self, u: u128) -> (Uuid, String) {
        let id = self.joined(u);
        let pi = self.attach(id);
        (id, pi)
    }

    /// Joins a paid contest and pays: a confirmed entry.
    #[track_caller]
    fn paid_entry(&mut self, u: u128) -> (Uuid, String) {
        let (id, pi) = self.pending_entry(u);
        self.pay(&pi);
        assert_eq!(self.status(id), Confirmed);
        (id, pi)
    }

    #[track_caller]
    fn pay_with(&mut self, pi: &str, amount_cents: i64, currency: &str) -> Vec<Event> {
        self.run(Command::PaymentSucceeded {
            payment_intent_id: pi.to_owned(),
            amount_cents,
            currency: currency.to_owned(),
        })
    }

    #[track_caller]
    fn pay(&mut self, pi: &str) -> Vec<Event> {
        self.pay_with(pi, FEE, "usd")
    }

    #[track_caller]
    fn entry(&self, id: Uuid) -> &Entry {
        self.contest.entry(id).expect("no such entry")
    }

    #[track_caller]
    fn status(&self, id: Uuid) -> EntryStatus {
        self.entry(id).status
    }

    fn seats(&self) -> (i32, i32, i32) {
        (
            self.contest.seats_confirmed(),
            self.contest.seats_pending(),
            self.contest.seats_left(),
        )
    }
}

// ---------------------------------------------------------------------------
// The property test.
// ---------------------------------------------------------------------------

/// One generated step. Indices pick among the candidates of the moment, so
/// a sequence stays meaningful while it shrinks.
#[derive(Debug, Clone)]
enum Op {
    Edit,
    Open,
    Lock,
    Cancel,
    Settle(SettleKind),
    Join(u8),
    Withdraw(u8),
    /// A PaymentIntent for a pending entry that has none.
    Attach(u8),
    /// `payment_intent.succeeded` for a known PaymentIntent.
    Pay(u8, PayKind),
    PayFail(u8, u8),
    Refund(u8),
    Tick,
    /// Moves the clock forward this many minutes (0..=20).
    Advance(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayKind {
    Exact,
    WrongAmount,
    WrongCurrency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettleKind {
    Valid,
    NotConfirmedUser,
    RankZero,
    RanksFromTwo,
    DuplicateUser,
    NegativePrize,
    OverPool,
}

impl SettleKind {
    /// Words of the rule a broken kind must name; `None` for valid ones.
    fn rule(self) -> Option<&'static str> {
        match self {
            SettleKind::Valid => None,
            SettleKind::NotConfirmedUser => Some("confirmed entry"),
            SettleKind::RankZero | SettleKind::RanksFromTwo => Some("start at 1"),
            SettleKind::DuplicateUser => Some("once"),
            SettleKind::NegativePrize => Some("negative"),
            SettleKind::OverPool => Some("prize pool"),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    fee: i64,
    capacity: i32,
    ops: Vec<Op>,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let settle = prop_oneof![
        4 => Just(SettleKind::Valid),
        1 => Just(SettleKind::NotConfirmedUser),
        1 => Just(SettleKind::RankZero),
        1 => Just(SettleKind::RanksFromTwo),
        1 => Just(SettleKind::DuplicateUser),
        1 => Just(SettleKind::NegativePrize),
        1 => Just(SettleKind::OverPool),
    ];
    let pay = prop_oneof![
        6 => Just(PayKind::Exact),
        1 => Just(PayKind::WrongAmount),
        1 => Just(PayKind::WrongCurrency),
    ];
    prop_oneof![
        // Lock and cancel end the interesting part of a sequence: rare.
        1 => Just(Op::Edit),
        4 => Just(Op::Open),
        1 => Just(Op::Lock),
        1 => Just(Op::Cancel),
        6 => settle.prop_map(Op::Settle),
        20 => (0..USERS).prop_map(Op::Join),
        5 => (0..USERS).prop_map(Op::Withdraw),
        14 => any::<u8>().prop_map(Op::Attach),
        14 => (any::<u8>(), pay).prop_map(|(i, k)| Op::Pay(i, k)),
        3 => (any::<u8>(), 0..2u8).prop_map(|(i, e)| Op::PayFail(i, e)),
        5 => any::<u8>().prop_map(Op::Refund),
        8 => Just(Op::Tick),
        // 10 minutes on average: locks_at passes in many sequences.
        12 => (0..=20i64).prop_map(Op::Advance),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop_oneof![1 => Just(0i64), 3 => Just(FEE)],
        1..=5i32,
        // Most sequences start by opening, so they reach entries early.
        proptest::bool::weighted(0.8),
        proptest::collection::vec(op_strategy(), 0..=60),
    )
        .prop_map(|(fee, capacity, open_first, mut ops)| {
            if open_first {
                ops.insert(0, Op::Open);
            }
            Case { fee, capacity, ops }
        })
}

/// What the coverage test counts.
#[derive(Debug, Default)]
struct Stats {
    sequences: u32,
    steps: u32,
    accepted: BTreeMap<&'static str, u32>,
    no_event: BTreeMap<&'static str, u32>,
    refused: BTreeMap<String, u32>,
    /// Entry statuses reached through events.
    reached: BTreeMap<&'static str, u32>,
    reasons: BTreeMap<String, u32>,
    automatic_locks: u32,
    /// Steps ending with an open contest that has no seat left.
    open_and_full: u32,
    /// Steps ending with an open contest holding confirmed and pending entries.
    open_with_confirmed_and_pending: u32,
}

fn error_code(e: &DomainError) -> &'static str {
    match e {
        DomainError::InvalidTransition { .. } => "INVALID_TRANSITION",
        DomainError::ContestFull => "CONTEST_FULL",
        DomainError::AlreadyEntered => "ALREADY_ENTERED",
        DomainError::NotEntered => "NOT_ENTERED",
        DomainError::UnknownEntry => "UNKNOWN_ENTRY",
        DomainError::Validation(_) => "VALIDATION_FAILED",
    }
}

impl Stats {
    fn record(&mut self, command: &Command, result: &Result<Vec<Event>, DomainError>) {
        let kind = command.kind();
        match result {
            Ok(events) if !events.is_empty() => {
                *self.accepted.entry(kind).or_default() += 1;
                for event in events {
                    match event {
                        Event::EntryCreated { entry } => {
                            *self.reached.entry(entry.status.as_str()).or_default() += 1;
                        }
                        Event::EntryStatusChanged { to, reason, .. } => {
                            *self.reached.entry(to.as_str()).or_default() += 1;
                            *self.reasons.entry(format!("{reason:?}")).or_default() += 1;
                        }
                        Event::StateChanged {
                            automatic: true, ..
                        } => self.automatic_locks += 1,
                        _ => {}
                    }
                }
            }
            Ok(_) => *self.no_event.entry(kind).or_default() += 1,
            Err(e) => {
                *self
                    .refused
                    .entry(format!("{kind}: {}", error_code(e)))
                    .or_default() += 1;
            }
        }
    }

    fn sample(&mut self, c: &Contest) {
        self.steps += 1;
        if c.state == Open && c.seats_left() == 0 {
            self.open_and_full += 1;
        }
        if c.state == Open && c.seats_confirmed() > 0 && c.seats_pending() > 0 {
            self.open_with_confirmed_and_pending += 1;
        }
    }
}

fn pick<T: Clone>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(i) % items.len()].clone())
}

fn known_pis(c: &Contest) -> Vec<String> {
    c.entries()
        .filter_map(|e| e.payment_intent_id.clone())
        .collect()
}

/// Standings from the confirmed users of the moment, valid or broken as told.
fn standings_for(c: &Contest, kind: SettleKind) -> Vec<Standing> {
    let mut users: Vec<Uuid> = c
        .entries()
        .filter(|e| e.status == Confirmed)
        .map(|e| e.user_id)
        .collect();
    users.sort();
    let pool = c.prize_pool();
    let n = i32::try_from(users.len()).unwrap();
    let share = if n == 0 { 0 } else { pool / i64::from(n) };
    let mut s: Vec<Standing> = users
        .iter()
        .zip(1..)
        .map(|(u, rank)| standing(*u, rank, share))
        .collect();
    let outsider = user(99);
    match kind {
        // Given in reverse: they must be stored sorted by rank.
        SettleKind::Valid => s.reverse(),
        SettleKind::NotConfirmedUser => s.push(standing(outsider, n + 1, 0)),
        SettleKind::RankZero => match s.first_mut() {
            Some(first) => first.rank = 0,
            None => s.push(standing(outsider, 0, 0)),
        },
        SettleKind::RanksFromTwo => {
            if s.is_empty() {
                s.push(standing(outsider, 1, 0));
            }
            for x in &mut s {
                x.rank += 1;
            }
        }
        SettleKind::DuplicateUser => {
            let dup = s.first().map_or(outsider, |f| f.user_id);
            if s.is_empty() {
                s.push(standing(dup, 1, 0));
            }
            s.push(standing(dup, n + 2, 0));
        }
        SettleKind::NegativePrize => match s.last_mut() {
            Some(last) => last.prize_cents = -1,
            None => s.push(standing(outsider, 1, -1)),
        },
        SettleKind::OverPool => {
            let total: i64 = s.iter().map(|x| x.prize_cents).sum();
            match s.first_mut() {
                Some(first) => first.prize_cents += pool - total + 1,
                None => s.push(standing(outsider, 1, 1)),
            }
        }
    }
    s
}

/// The command an op stands for now; `None` for a clock step or when there
/// is nothing to pick from.
fn command_for(w: &mut World, op: &Op) -> Option<Command> {
    let c = &w.contest;
    Some(match *op {
        Op::Edit => Command::Edit(ContestPatch {
            title: Some(format!("Contest {}", w.log.len())),
            ..ContestPatch::default()
        }),
        Op::Open => Command::Open,
        Op::Lock => Command::Lock,
        Op::Cancel => Command::Cancel,
        Op::Settle(kind) => Command::Settle(standings_for(c, kind)),
        Op::Join(u) => {
            let entry_id = w.fresh_entry_id();
            Command::Join {
                user_id: user(u128::from(u)),
                entry_id,
            }
        }
        Op::Withdraw(u) => Command::Withdraw {
            user_id: user(u128::from(u)),
        },
        Op::Attach(i) => {
            let candidates: Vec<Uuid> = c
                .entries()
                .filter(|e| e.status == PendingPayment && e.payment_intent_id.is_none())
                .map(|e| e.id)
                .collect();
            let entry_id = pick(&candidates, i)?;
            Command::AttachPaymentIntent {
                entry_id,
                payment_intent_id: w.fresh_pi(),
            }
        }
        Op::Pay(i, kind) => {
            let (payment_intent_id, amount, currency) =
                match pick(&known_pis(c), i).and_then(|pi| c.entry_by_payment_intent(&pi)) {
                    Some(e) => (
                        e.payment_intent_id.clone().unwrap(),
                        e.amount_cents,
                        e.currency.clone(),
                    ),
                    None => ("pi_unknown".to_owned(), FEE, "usd".to_owned()),
                };
            let (amount_cents, currency) = match kind {
                PayKind::Exact => (amount, currency),
                PayKind::WrongAmount => (amount - 1, currency),
                PayKind::WrongCurrency => (amount, "eur".to_owned()),
            };
            Command::PaymentSucceeded {
                payment_intent_id,
                amount_cents,
                currency,
            }
        }
        Op::PayFail(i, e) => Command::PaymentFailed {
            payment_intent_id: pick(&known_pis(c), i).unwrap_or_else(|| "pi_unknown".to_owned()),
            error: ["card_declined", "insufficient_funds"][usize::from(e % 2)].to_owned(),
        },
        Op::Refund(i) => {
            // Mostly a refund that is due, sometimes one for any entry.
            let due: Vec<String> = c
                .entries()
                .filter(|e| e.status == RefundPending)
                .filter_map(|e| e.payment_intent_id.clone())
                .collect();
            let candidates = if i % 3 != 0 && !due.is_empty() {
                due
            } else {
                known_pis(c)
            };
            Command::Refunded {
                payment_intent_id: pick(&candidates, i / 3)
                    .unwrap_or_else(|| "pi_unknown".to_owned()),
            }
        }
        Op::Tick => Command::Tick,
        Op::Advance(minutes) => {
            w.advance(minutes);
            return None;
        }
    })
}

fn allowed_state_change(from: ContestState, to: ContestState) -> bool {
    matches!(
        (from, to),
        (Draft, Open) | (Open, Locked) | (Locked, Settled) | (Draft | Open | Locked, Cancelled)
    )
}

fn is_terminal(s: ContestState) -> bool {
    matches!(s, Settled | Cancelled)
}

/// Checks the events of an accepted command against the state before it,
/// and the state after it against the events.
fn check_events(
    before: &Contest,
    command: &Command,
    events: &[Event],
    ctx: &Ctx,
    after: &Contest,
) -> Result<(), TestCaseError> {
    let fee = before.details.entry_fee_cents;
    let kind = command.kind();
    let mut state = before.state;
    let mut status: HashMap<Uuid, EntryStatus> =
        before.entries().map(|e| (e.id, e.status)).collect();
    for event in events {
        match event {
            Event::Edited { .. } => {
                prop_assert!(matches!(command, Command::Edit(_)) && state == Draft);
            }
            Event::StateChanged {
                from,
                to,
                automatic,
            } => {
                prop_assert_eq!(*from, state, "state change `from` of {}", kind);
                prop_assert!(
                    allowed_state_change(*from, *to),
                    "{} made {:?} -> {:?}",
                    kind,
                    from,
                    to
                );
                prop_assert_eq!(*automatic, matches!(command, Command::Tick));
                state = *to;
            }
            Event::StandingsRecorded { standings } => {
                prop_assert!(matches!(command, Command::Settle(_)) && state == Locked);
                prop_assert!(
                    standings.is_sorted_by_key(|s| s.rank),
                    "standings stored unsorted: {:?}",
                    standings
                );
            }
            Event::EntryCreated { entry } => {
                // Entries are born only of a join while open; a free one is
                // born confirmed, a paid one pending with a hold.
                prop_assert!(
                    matches!(command, Command::Join { .. }) && before.state == Open,
                    "{} in a {} contest created {:?}",
                    kind,
                    before.state,
                    entry
                );
                prop_assert!(!status.contains_key(&entry.id));
                let (born, hold) = if fee == 0 {
                    (Confirmed, None)
                } else {
                    (PendingPayment, Some(ctx.now + ctx.hold))
                };
                prop_assert_eq!(entry.status, born);
                prop_assert_eq!(entry.hold_expires_at, hold);
                prop_assert_eq!(entry.amount_cents, fee);
                prop_assert_eq!(&entry.currency, &before.details.currency);
                status.insert(entry.id, entry.status);
            }
            Event::EntryStatusChanged {
                entry_id, from, to, ..
            } => {
                prop_assert_eq!(
                    status.get(entry_id).copied(),
                    Some(*from),
                    "`from` of a status change made by {}",
                    kind
                );
                prop_assert_ne!(*from, Refunded, "a refunded entry changed");
                prop_assert_ne!(from, to);
                prop_assert_ne!(*to, PendingPayment, "an entry went back to pending");
                if *to == Confirmed {
                    // Invariant 3.
                    let entry = before.entry(*entry_id).unwrap();
                    let exact = matches!(
                        command,
                        Command::PaymentSucceeded { amount_cents, currency, .. }
                            if *amount_cents == entry.amount_cents && *currency == entry.currency
                    );
                    prop_assert!(
                        fee > 0 && *from == PendingPayment && exact && before.state == Open,
                        "(3) {:?} confirmed by {:?} in a {} contest",
                        entry,
                        command,
                        before.state
                    );
                }
                status.insert(*entry_id, *to);
            }
            Event::PaymentIntentAttached { .. } => {
                prop_assert!(
                    matches!(command, Command::AttachPaymentIntent { .. }),
                    "{} attached a PaymentIntent",
                    kind
                );
            }
            Event::PaymentFailureRecorded { entry_id, .. } => {
                prop_assert!(
                    matches!(command, Command::PaymentFailed { .. }),
                    "{} recorded a payment failure",
                    kind
                );
                prop_assert_eq!(status.get(entry_id).copied(), Some(PendingPayment));
            }
        }
    }
    prop_assert_eq!(after.state, state);
    prop_assert_eq!(after.entries().count(), status.len());
    for e in after.entries() {
        prop_assert_eq!(
            Some(e.status),
            status.get(&e.id).copied(),
            "entry {} after {}",
            e.id,
            kind
        );
    }
    Ok(())
}

/// The invariants of lifecycle.md that hold in every state.
fn check_invariants(w: &World) -> Result<(), TestCaseError> {
    let c = &w.contest;
    let count = |s: EntryStatus| c.entries().filter(|e| e.status == s).count();
    let confirmed = i32::try_from(count(Confirmed)).unwrap();
    let pending = i32::try_from(count(PendingPayment)).unwrap();
    // (1)
    prop_assert_eq!(c.seats_confirmed(), confirmed, "seats_confirmed()");
    prop_assert_eq!(c.seats_pending(), pending, "seats_pending()");
    prop_assert!(
        confirmed + pending <= c.details.capacity,
        "(1) {} confirmed + {} pending > capacity {}",
        confirmed,
        pending,
        c.details.capacity
    );
    prop_assert_eq!(c.seats_left(), c.details.capacity - confirmed - pending);
    // (2), and `live_entry_of` agrees.
    let mut live: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for e in c.entries() {
        let ids = live.entry(e.user_id).or_default();
        if e.status.holds_seat() {
            ids.push(e.id);
        }
    }
    for (u, ids) in &live {
        prop_assert!(ids.len() <= 1, "(2) user {} has live entries {:?}", u, ids);
        prop_assert_eq!(c.live_entry_of(*u).map(|e| e.id), ids.first().copied());
    }
    for e in c.entries() {
        if let Some(pi) = &e.payment_intent_id {
            prop_assert_eq!(c.entry_by_payment_intent(pi).map(|x| x.id), Some(e.id));
        }
        match e.status {
            // Lock and cancel expire every pending entry.
            PendingPayment => {
                prop_assert_eq!(c.state, Open, "a pending entry in a {} contest", c.state);
                prop_assert!(e.hold_expires_at.is_some());
            }
            Confirmed => prop_assert_eq!(e.hold_expires_at, None),
            _ => {}
        }
        if c.details.entry_fee_cents == 0 {
            prop_assert!(
                matches!(e.status, Confirmed | Withdrawn),
                "a free entry is {}",
                e.status
            );
        }
        if c.state == Cancelled {
            prop_assert!(!e.status.holds_seat(), "a cancelled contest kept {:?}", e);
        }
    }
    // (5)
    prop_assert_eq!(i64::try_from(w.log.len()).unwrap(), c.version);
    for (i, (v, _)) in w.log.iter().enumerate() {
        prop_assert_eq!(*v, i64::try_from(i).unwrap() + 1, "log {:?}", w.log);
    }
    // The timer: locks_at while open, or the earliest hold.
    let lock = (c.state == Open).then_some(c.details.locks_at);
    let hold = c
        .entries()
        .filter(|e| e.status == PendingPayment)
        .filter_map(|e| e.hold_expires_at)
        .min();
    let due = [lock, hold].into_iter().flatten().min();
    prop_assert_eq!(c.next_deadline(), due);
    Ok(())
}

/// What lifecycle.md says some commands must decide (as opposed to the
/// invariants, which say what must never happen).
fn check_oracles(
    before: &Contest,
    command: &Command,
    settle: Option<SettleKind>,
    result: &Result<Vec<Event>, DomainError>,
) -> Result<(), TestCaseError> {
    let state = before.state;
    match command {
        Command::Settle(_) => {
            let kind = settle.unwrap();
            match (state, kind.rule(), result) {
                (Locked, None, Ok(events)) => prop_assert_eq!(events.len(), 2),
                (Locked, Some(words), Err(DomainError::Validation(rules))) => prop_assert!(
                    rules
                        .iter()
                        .any(|r| r.field == "standings" && r.rule.contains(words)),
                    "{:?}: rules {:?}",
                    kind,
                    rules
                ),
                (Locked, _, other) => {
                    prop_assert!(false, "{:?} standings gave {:?}", kind, other);
                }
                (_, _, other) => {
                    prop_assert_eq!(other, &Err(DomainError::invalid(state, "settle")), "settle")
                }
            }
        }
        Command::PaymentSucceeded {
            payment_intent_id,
            amount_cents,
            currency,
        } => match before.entry_by_payment_intent(payment_intent_id) {
            None => prop_assert_eq!(result, &Err(DomainError::UnknownEntry)),
            Some(e) => {
                let exact = *amount_cents == e.amount_cents && *currency == e.currency;
                let expected = match e.status {
                    PendingPayment if state == Open && exact => Some(Confirmed),
                    PendingPayment | Expired | Withdrawn => Some(RefundPending),
                    Confirmed | RefundPending | Refunded => None,
                };
                let got = match result {
                    Ok(events) => match events.as_slice() {
                        [] => None,
                        [Event::EntryStatusChanged { entry_id, to, .. }] if *entry_id == e.id => {
                            Some(*to)
                        }
                        other => {
                            prop_assert!(false, "a payment decided {:?}", other);
                            None
                        }
                    },
                    Err(err) => {
                        prop_assert!(false, "a payment was refused: {:?}", err);
                        None
                    }
                };
                prop_assert_eq!(got, expected, "payment for a {} entry", e.status);
            }
        },
        Command::Join { user_id, .. } => {
            let live = before.live_entry_of(*user_id).map(|e| e.status);
            match (state, live, result) {
                (Open, Some(PendingPayment), Ok(events)) => prop_assert!(events.is_empty()),
                (Open, Some(Confirmed), Err(DomainError::AlreadyEntered)) => {}
                (Open, None, Err(DomainError::ContestFull)) => {
                    prop_assert_eq!(before.seats_left(), 0);
                }
                (Open, None, Ok(events)) => {
                    prop_assert!(before.seats_left() > 0);
                    prop_assert_eq!(events.len(), 1);
                }
                (Open, _, other) => prop_assert!(false, "join gave {:?}", other),
                (_, _, other) => {
                    prop_assert_eq!(other, &Err(DomainError::invalid(state, "join")));
                }
            }
        }
        Command::Withdraw { user_id } => {
            let live = before.live_entry_of(*user_id);
            let expected = match (state, live) {
                (Open, None) => Err(DomainError::NotEntered),
                (Open, Some(e)) => {
                    let to = if e.status == Confirmed && e.amount_cents > 0 {
                        RefundPending
                    } else {
                        Withdrawn
                    };
                    Ok(vec![status_changed(
                        e.id,
                        e.status,
                        to,
                        EntryReason::Withdrawn,
                    )])
                }
                _ => Err(DomainError::invalid(state, "withdraw")),
            };
            prop_assert_eq!(result, &expected);
        }
        _ => {}
    }
    Ok(())
}

/// One command through the actor's path, with every check.
fn step_command(
    w: &mut World,
    command: &Command,
    settle: Option<SettleKind>,
    money_taken: &mut BTreeSet<String>,
    stats: &mut Stats,
) -> Result<(), TestCaseError> {
    let before = w.contest.clone();
    if let Command::PaymentSucceeded {
        payment_intent_id, ..
    } = command
        && before.entry_by_payment_intent(payment_intent_id).is_some()
    {
        money_taken.insert(payment_intent_id.clone());
    }
    let result = w.try_run(command);
    stats.record(command, &result);
    match &result {
        Ok(events) if !events.is_empty() => {
            // (5)
            prop_assert_eq!(w.contest.version, before.version + 1);
            prop_assert_eq!(w.log.last(), Some(&(w.contest.version, command.kind())));
            check_events(&before, command, events, &w.ctx, &w.contest)?;
            // A replay (a retried request, a duplicate Stripe event) decides
            // nothing more.
            let replay = decide(&w.contest, command, &w.ctx);
            prop_assert!(
                !matches!(&replay, Ok(events) if !events.is_empty()),
                "replaying {:?} decided {:?}",
                command,
                replay
            );
        }
        _ => prop_assert_eq!(&w.contest, &before),
    }
    if is_terminal(before.state) {
        prop_assert_eq!(w.contest.state, before.state, "a terminal state changed");
        prop_assert_eq!(&w.contest.standings, &before.standings);
        prop_assert_eq!(&w.contest.details, &before.details);
    }
    for e in before.entries().filter(|e| e.status == Refunded) {
        prop_assert_eq!(w.status(e.id), Refunded, "a refunded entry changed");
    }
    check_oracles(&before, command, settle, &result)?;
    if let (Ok(events), Command::Settle(given)) = (&result, command)
        && !events.is_empty()
    {
        let stored = w.contest.standings.clone().unwrap();
        let mut expected = given.clone();
        expected.sort_by_key(|s| (s.rank, s.user_id));
        prop_assert_eq!(stored, expected);
    }
    Ok(())
}

fn run_case(case: &Case, stats: &mut Stats) -> Result<(), TestCaseError> {
    stats.sequences += 1;
    let mut w = World::draft(case.fee, case.capacity);
    let mut money_taken = BTreeSet::new();
    check_invariants(&w)?;
    for op in &case.ops {
        let before = w.contest.clone();
        match command_for(&mut w, op) {
            Some(command) => {
                let settle = match op {
                    Op::Settle(kind) => Some(*kind),
                    _ => None,
                };
                step_command(&mut w, &command, settle, &mut money_taken, stats)?;
            }
            None => prop_assert_eq!(&w.contest, &before),
        }
        check_invariants(&w)?;
        stats.sample(&w.contest);
    }
    // Invariant 4, in the end: once Stripe has completed every queued
    // refund, each entry whose money was taken is confirmed in a contest
    // that goes on, or refunded.
    let due: Vec<Option<String>> = w
        .contest
        .entries()
        .filter(|e| e.status == RefundPending)
        .map(|e| e.payment_intent_id.clone())
        .collect();
    for pi in due {
        prop_assert!(pi.is_some(), "a refund is due on an entry never paid");
        let command = Command::Refunded {
            payment_intent_id: pi.unwrap(),
        };
        step_command(&mut w, &command, None, &mut money_taken, stats)?;
        check_invariants(&w)?;
    }
    for pi in &money_taken {
        let e = w.contest.entry_by_payment_intent(pi).unwrap();
        let kept = e.status == Confirmed && matches!(w.contest.state, Open | Locked | Settled);
        prop_assert!(
            kept || e.status == Refunded,
            "(4) money taken on {:?} in a {} contest",
            e,
            w.contest.state
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_step_of_any_command_sequence_keeps_the_lifecycle_invariants(case in case_strategy()) {
        run_case(&case, &mut Stats::default())?;
    }
}

#[test]
fn the_generated_sequences_reach_every_kind_of_command_and_the_interesting_states() {
    let mut runner = TestRunner::deterministic();
    let strategy = case_strategy();
    let mut stats = Stats::default();
    for _ in 0..256 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        run_case(&case, &mut stats).unwrap();
    }
    println!("{stats:#?}");
    let kinds = [
        "edit",
        "open",
        "lock",
        "cancel",
        "settle",
        "join",
        "withdraw",
        "attach_payment_intent",
        "payment_succeeded",
        "payment_failed",
        "refunded",
        "tick",
    ];
    for kind in kinds {
        assert!(
            stats.accepted.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} accepted"
        );
    }
    for refusal in [
        "join: CONTEST_FULL",
        "join: ALREADY_ENTERED",
        "join: INVALID_TRANSITION",
        "withdraw: NOT_ENTERED",
        "settle: VALIDATION_FAILED",
        "payment_succeeded: UNKNOWN_ENTRY",
    ] {
        assert!(
            stats.refused.contains_key(refusal),
            "never refused {refusal}"
        );
    }
    for no_event in ["join", "payment_succeeded", "tick"] {
        assert!(
            stats.no_event.contains_key(no_event),
            "{no_event} never empty"
        );
    }
    for status in ["pending_payment", "confirmed", "expired", "withdrawn"] {
        assert!(stats.reached.contains_key(status), "never {status}");
    }
    assert!(stats.reached["refund_pending"] > 0 && stats.reached["refunded"] > 0);
    for reason in [
        "Paid",
        "PaidAfterHoldExpired",
        "PaidAfterWithdrawal",
        "PaidWrongAmount",
        "HoldExpired",
        "Withdrawn",
        "ContestLocked",
        "ContestCancelled",
        "Refunded",
    ] {
        assert!(stats.reasons.contains_key(reason), "never {reason}");
    }
    assert!(stats.automatic_locks > 0, "never locked at locks_at");
    assert!(stats.open_and_full > 0, "never full");
    assert!(stats.open_with_confirmed_and_pending > 0);
}

// ---------------------------------------------------------------------------
// The contest table of lifecycle.md: every state × action.
// ---------------------------------------------------------------------------

const ACTIONS: [&str; 7] = [
    "edit", "open", "join", "withdraw", "lock", "settle", "cancel",
];

/// The action, shaped to be allowed where the table says yes: user 1 holds
/// a confirmed entry (when there are entries at all), user 50 none.
fn action(name: &str) -> Command {
    match name {
        "edit" => Command::Edit(ContestPatch {
            title: Some("Renamed".to_owned()),
            ..ContestPatch::default()
        }),
        "open" => Command::Open,
        "join" => Command::Join {
            user_id: user(50),
            entry_id: Uuid::from_u128(0xDEAD),
        },
        "withdraw" => Command::Withdraw { user_id: user(1) },
        "lock" => Command::Lock,
        "settle" => Command::Settle(vec![standing(user(1), 1, 0)]),
        "cancel" => Command::Cancel,
        other => unreachable!("{other}"),
    }
}

#[track_caller]
fn assert_allows_only(w: &World, allowed: &[&str]) {
    let state = w.contest.state;
    let mut wrong = Vec::new();
    for name in ACTIONS {
        let got = decide(&w.contest, &action(name), &w.ctx);
        let ok = if allowed.contains(&name) {
            matches!(&got, Ok(events) if !events.is_empty())
        } else {
            got == Err(DomainError::InvalidTransition {
                state,
                action: name,
            })
        };
        if !ok {
            wrong.push(format!("{name}: {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "a {state} contest: {wrong:#?}");
}

fn open_with_one_paid_entrant() -> World {
    let mut w = World::open(FEE, 3);
    w.paid_entry(1);
    w
}

fn locked_with_one_paid_entrant() -> World {
    let mut w = open_with_one_paid_entrant();
    w.run(Command::Lock);
    w
}

#[test]
fn a_draft_contest_may_be_edited_opened_or_cancelled_and_nothing_else() {
    let w = World::draft(FEE, 3);
    assert_allows_only(&w, &["edit", "open", "cancel"]);
}

#[test]
fn an_open_contest_may_be_joined_withdrawn_from_locked_or_cancelled_and_nothing_else() {
    let w = open_with_one_paid_entrant();
    assert_allows_only(&w, &["join", "withdraw", "lock", "cancel"]);
}

#[test]
fn a_locked_contest_may_be_settled_or_cancelled_and_nothing_else() {
    let w = locked_with_one_paid_entrant();
    assert_allows_only(&w, &["settle", "cancel"]);
}

#[test]
fn a_settled_contest_allows_no_action() {
    let mut w = locked_with_one_paid_entrant();
    w.run(action("settle"));
    assert_eq!(w.contest.state, Settled);
    assert_allows_only(&w, &[]);
}

#[test]
fn a_cancelled_contest_allows_no_action_whichever_state_it_was_cancelled_from() {
    for mut w in [
        World::draft(FEE, 3),
        open_with_one_paid_entrant(),
        locked_with_one_paid_entrant(),
    ] {
        w.run(Command::Cancel);
        assert_eq!(w.contest.state, Cancelled);
        assert_allows_only(&w, &[]);
    }
}

#[test]
fn opening_with_locks_at_in_the_past_is_a_validation_error_naming_locks_at() {
    for minutes in [LOCKS_AFTER_MINUTES, LOCKS_AFTER_MINUTES + 1] {
        let mut w = World::draft(FEE, 3);
        w.advance(minutes);
        match w.try_run(&Command::Open) {
            Err(DomainError::Validation(rules)) => {
                assert!(rules.iter().any(|r| r.field == "locks_at"), "{rules:?}");
            }
            other => panic!("opening at locks_at + {minutes} min gave {other:?}"),
        }
        assert_eq!(w.contest.state, Draft);
        assert_eq!(w.contest.version, 1);
    }
}

#[test]
fn each_accepted_command_adds_one_version_and_one_log_row_and_others_none() {
    let mut w = World::open(FEE, 1);
    let (_, pi) = w.pending_entry(1);
    assert!(w.join(1).unwrap().is_empty(), "a resumed join");
    assert_eq!(w.join(2), Err(DomainError::ContestFull));
    assert!(w.run(Command::Tick).is_empty(), "nothing due");
    w.pay(&pi);
    assert!(w.pay(&pi).is_empty(), "a duplicate payment");
    assert_eq!(
        w.log,
        vec![
            (1, "create"),
            (2, "open"),
            (3, "join"),
            (4, "attach_payment_intent"),
            (5, "payment_succeeded"),
        ]
    );
    assert_eq!(w.contest.version, 5);
}

// ---------------------------------------------------------------------------
// Entry transitions of lifecycle.md.
// ---------------------------------------------------------------------------

#[test]
fn joining_a_paid_open_contest_makes_a_pending_entry_holding_a_seat_for_15_minutes() {
    let mut w = World::open(FEE, 2);
    let id = w.joined(1);
    let e = w.entry(id);
    assert_eq!(e.status, PendingPayment);
    assert_eq!(e.user_id, user(1));
    assert_eq!((e.amount_cents, e.currency.as_str()), (FEE, "usd"));
    assert_eq!(e.hold_expires_at, Some(t0() + Duration::minutes(15)));
    assert_eq!(e.payment_intent_id, None);
    assert_eq!(w.seats(), (0, 1, 1));
    assert_eq!(w.contest.live_entry_of(user(1)).map(|e| e.id), Some(id));
}

#[test]
fn joining_a_free_open_contest_confirms_the_entry_at_once() {
    let mut w = World::open(0, 2);
    let id = w.joined(1);
    let e = w.entry(id);
    assert_eq!(e.status, Confirmed);
    assert_eq!((e.amount_cents, e.hold_expires_at), (0, None));
    assert_eq!(w.seats(), (1, 0, 1));
}

#[test]
fn attaching_a_payment_intent_records_it_on_the_entry_once() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    assert_eq!(w.entry(id).payment_intent_id.as_deref(), Some(pi.as_str()));
    assert_eq!(
        w.contest.entry_by_payment_intent(&pi).map(|e| e.id),
        Some(id)
    );
    let again = w.run(Command::AttachPaymentIntent {
        entry_id: id,
        payment_intent_id: pi,
    });
    assert!(again.is_empty());
}

#[test]
fn a_payment_of_the_exact_amount_and_currency_confirms_a_pending_entry() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    let events = w.pay(&pi);
    assert_eq!(
        events,
        vec![status_changed(
            id,
            PendingPayment,
            Confirmed,
            EntryReason::Paid
        )]
    );
    assert_eq!(w.entry(id).hold_expires_at, None);
    assert_eq!(w.seats(), (1, 0, 1));
}

#[test]
fn a_duplicate_payment_event_decides_nothing() {
    let mut w = World::open(FEE, 2);
    let (_, pi) = w.paid_entry(1);
    let version = w.contest.version;
    assert!(w.pay(&pi).is_empty());
    assert_eq!(w.contest.version, version);
}

#[test]
fn a_payment_for_an_unknown_payment_intent_is_an_unknown_entry() {
    let mut w = World::open(FEE, 2);
    w.pending_entry(1);
    let got = w.try_run(&Command::PaymentSucceeded {
        payment_intent_id: "pi_nobody".to_owned(),
        amount_cents: FEE,
        currency: "usd".to_owned(),
    });
    assert_eq!(got, Err(DomainError::UnknownEntry));
}

#[track_caller]
fn assert_refund_queued(events: &[Event], id: Uuid, from: EntryStatus) {
    match events {
        [
            Event::EntryStatusChanged {
                entry_id,
                from: f,
                to: RefundPending,
                ..
            },
        ] if *entry_id == id && *f == from => {}
        other => panic!("expected {id}: {from} -> refund_pending, got {other:?}"),
    }
}

#[test]
fn a_payment_after_the_hold_expired_is_refunded() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    w.advance(HOLD_MINUTES);
    w.run(Command::Tick);
    assert_eq!(w.status(id), Expired);
    let events = w.pay(&pi);
    assert_eq!(
        events,
        vec![status_changed(
            id,
            Expired,
            RefundPending,
            EntryReason::PaidAfterHoldExpired
        )]
    );
    assert_eq!(w.seats(), (0, 0, 2));
}

#[test]
fn a_payment_after_withdrawal_is_refunded() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    w.run(Command::Withdraw { user_id: user(1) });
    let events = w.pay(&pi);
    assert_eq!(
        events,
        vec![status_changed(
            id,
            Withdrawn,
            RefundPending,
            EntryReason::PaidAfterWithdrawal
        )]
    );
}

#[test]
fn a_payment_after_the_contest_locked_is_refunded() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    w.run(Command::Lock);
    let events = w.pay(&pi);
    assert_refund_queued(&events, id, Expired);
    assert_eq!(w.seats(), (0, 0, 2));
}

#[test]
fn a_payment_after_the_contest_was_cancelled_is_refunded() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    w.run(Command::Cancel);
    let events = w.pay(&pi);
    assert_refund_queued(&events, id, Expired);
}

#[test]
fn a_payment_of_the_wrong_amount_is_refunded() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    let events = w.pay_with(&pi, FEE - 1, "usd");
    assert_eq!(
        events,
        vec![status_changed(
            id,
            PendingPayment,
            RefundPending,
            EntryReason::PaidWrongAmount
        )]
    );
    assert_eq!(w.seats(), (0, 0, 2));
    assert!(w.contest.live_entry_of(user(1)).is_none());
}

#[test]
fn a_payment_in_the_wrong_currency_is_refunded() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    let events = w.pay_with(&pi, FEE, "eur");
    assert_refund_queued(&events, id, PendingPayment);
    assert_eq!(w.seats(), (0, 0, 2));
}

#[test]
fn a_failed_payment_keeps_the_entry_pending_and_records_the_error() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    let events = w.run(Command::PaymentFailed {
        payment_intent_id: pi.clone(),
        error: "card_declined".to_owned(),
    });
    assert_eq!(
        events,
        vec![Event::PaymentFailureRecorded {
            entry_id: id,
            error: "card_declined".to_owned()
        }]
    );
    assert_eq!(w.status(id), PendingPayment);
    assert_eq!(
        w.entry(id).last_payment_error.as_deref(),
        Some("card_declined")
    );
    assert_eq!(w.seats(), (0, 1, 1));
    // The app may retry with the same client secret.
    w.pay(&pi);
    assert_eq!(w.status(id), Confirmed);
}

#[test]
fn the_hold_timer_expires_a_pending_entry_and_frees_its_seat() {
    let mut w = World::open(FEE, 1);
    let (id, _) = w.pending_entry(1);
    w.advance(HOLD_MINUTES - 1);
    assert!(
        w.run(Command::Tick).is_empty(),
        "the hold has a minute left"
    );
    w.advance(1);
    let events = w.run(Command::Tick);
    assert_eq!(
        events,
        vec![status_changed(
            id,
            PendingPayment,
            Expired,
            EntryReason::HoldExpired
        )]
    );
    assert_eq!(w.seats(), (0, 0, 1));
    assert!(w.contest.live_entry_of(user(1)).is_none());
}

#[test]
fn withdrawing_a_pending_entry_withdraws_it_and_frees_its_seat() {
    let mut w = World::open(FEE, 1);
    let (id, _) = w.pending_entry(1);
    let events = w.run(Command::Withdraw { user_id: user(1) });
    assert_eq!(
        events,
        vec![status_changed(
            id,
            PendingPayment,
            Withdrawn,
            EntryReason::Withdrawn
        )]
    );
    assert_eq!(w.seats(), (0, 0, 1));
}

#[test]
fn withdrawing_a_confirmed_paid_entry_queues_a_refund() {
    let mut w = World::open(FEE, 1);
    let (id, _) = w.paid_entry(1);
    let events = w.run(Command::Withdraw { user_id: user(1) });
    assert_eq!(
        events,
        vec![status_changed(
            id,
            Confirmed,
            RefundPending,
            EntryReason::Withdrawn
        )]
    );
    assert_eq!(w.seats(), (0, 0, 1));
}

#[test]
fn withdrawing_a_confirmed_free_entry_withdraws_it_without_a_refund() {
    let mut w = World::open(0, 1);
    let id = w.joined(1);
    let events = w.run(Command::Withdraw { user_id: user(1) });
    assert_eq!(
        events,
        vec![status_changed(
            id,
            Confirmed,
            Withdrawn,
            EntryReason::Withdrawn
        )]
    );
}

#[test]
fn withdrawing_without_a_live_entry_is_not_entered() {
    let mut w = World::open(FEE, 1);
    assert_eq!(
        w.try_run(&Command::Withdraw { user_id: user(1) }),
        Err(DomainError::NotEntered)
    );
}

#[test]
fn locking_expires_every_pending_entry_and_keeps_the_confirmed_ones() {
    let mut w = World::open(FEE, 3);
    let (a, _) = w.pending_entry(1);
    let b = w.joined(2);
    let (c, _) = w.paid_entry(3);
    let events = w.run(Command::Lock);
    assert_eq!(
        events[0],
        Event::StateChanged {
            from: Open,
            to: Locked,
            automatic: false
        }
    );
    assert_eq!(events.len(), 3);
    assert_eq!(
        (w.status(a), w.status(b), w.status(c)),
        (Expired, Expired, Confirmed)
    );
    assert_eq!(w.seats(), (1, 0, 2));
}

#[test]
fn a_tick_at_locks_at_locks_the_contest_automatically() {
    let mut w = World::open(FEE, 3);
    w.advance(LOCKS_AFTER_MINUTES - 10);
    let (pending, _) = w.pending_entry(1);
    w.advance(9);
    assert!(w.run(Command::Tick).is_empty(), "a minute before locks_at");
    w.advance(1);
    let events = w.run(Command::Tick);
    assert_eq!(
        events,
        vec![
            Event::StateChanged {
                from: Open,
                to: Locked,
                automatic: true
            },
            status_changed(pending, PendingPayment, Expired, EntryReason::ContestLocked),
        ]
    );
    assert_eq!(w.contest.state, Locked);
}

#[test]
fn cancelling_expires_pending_entries_and_queues_refunds_for_confirmed_ones() {
    let mut w = World::open(FEE, 3);
    let (pending, _) = w.pending_entry(1);
    let (confirmed, _) = w.paid_entry(2);
    let events = w.run(Command::Cancel);
    assert!(events.contains(&status_changed(
        pending,
        PendingPayment,
        Expired,
        EntryReason::ContestCancelled
    )));
    assert!(events.contains(&status_changed(
        confirmed,
        Confirmed,
        RefundPending,
        EntryReason::ContestCancelled
    )));
    assert_eq!(w.seats(), (0, 0, 3));
}

#[test]
fn cancelling_a_locked_contest_queues_refunds_for_its_confirmed_entries() {
    let mut w = locked_with_one_paid_entrant();
    let id = w.contest.live_entry_of(user(1)).unwrap().id;
    w.run(Command::Cancel);
    assert_eq!(w.status(id), RefundPending);
}

#[test]
fn cancelling_a_free_contest_withdraws_its_confirmed_entries() {
    let mut w = World::open(0, 3);
    let id = w.joined(1);
    let events = w.run(Command::Cancel);
    assert!(events.contains(&status_changed(
        id,
        Confirmed,
        Withdrawn,
        EntryReason::ContestCancelled
    )));
}

#[test]
fn a_refund_completes_a_refund_pending_entry_for_good() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.paid_entry(1);
    w.run(Command::Withdraw { user_id: user(1) });
    let refunded = Command::Refunded {
        payment_intent_id: pi.clone(),
    };
    let events = w.run(refunded.clone());
    assert_eq!(
        events,
        vec![status_changed(
            id,
            RefundPending,
            Refunded,
            EntryReason::Refunded
        )]
    );
    // Nothing moves a refunded entry again.
    assert!(w.run(refunded).is_empty());
    assert!(w.pay(&pi).is_empty());
    w.run(Command::Cancel);
    assert_eq!(w.status(id), Refunded);
}

#[test]
fn a_refund_event_for_an_entry_with_no_refund_due_decides_nothing() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.paid_entry(1);
    assert!(
        w.run(Command::Refunded {
            payment_intent_id: pi
        })
        .is_empty()
    );
    assert_eq!(w.status(id), Confirmed);
}

#[test]
fn a_user_may_join_again_after_an_expired_withdrawn_or_refunded_entry_as_a_new_entry() {
    type Leave = fn(&mut World, Uuid, &str);
    let ways: [(EntryStatus, Leave); 3] = [
        (Expired, |w, _, _| {
            w.advance(HOLD_MINUTES);
            w.run(Command::Tick);
        }),
        (Withdrawn, |w, _, _| {
            w.run(Command::Withdraw { user_id: user(1) });
        }),
        (Refunded, |w, _, pi| {
            w.pay(pi);
            w.run(Command::Withdraw { user_id: user(1) });
            w.run(Command::Refunded {
                payment_intent_id: pi.to_owned(),
            });
        }),
    ];
    for (status, leave) in ways {
        let mut w = World::open(FEE, 1);
        let (old, pi) = w.pending_entry(1);
        leave(&mut w, old, &pi);
        assert_eq!(w.status(old), status);
        let new = w.joined(1);
        assert_ne!(new, old);
        assert_eq!(w.status(new), PendingPayment);
        assert_eq!(w.status(old), status, "the old entry is untouched");
        assert_eq!(w.contest.live_entry_of(user(1)).map(|e| e.id), Some(new));
        assert_eq!(w.contest.entries().count(), 2);
    }
}

#[test]
fn a_second_join_while_confirmed_is_already_entered() {
    let mut w = World::open(FEE, 3);
    w.paid_entry(1);
    assert_eq!(w.join(1), Err(DomainError::AlreadyEntered));
    let mut free = World::open(0, 3);
    free.joined(1);
    assert_eq!(free.join(1), Err(DomainError::AlreadyEntered));
}

#[test]
fn a_join_while_pending_decides_nothing_and_resumes_the_same_entry() {
    let mut w = World::open(FEE, 3);
    let (id, _) = w.pending_entry(1);
    let version = w.contest.version;
    assert_eq!(w.join(1), Ok(Vec::new()));
    assert_eq!(w.contest.version, version);
    assert_eq!(w.contest.live_entry_of(user(1)).map(|e| e.id), Some(id));
    assert_eq!(w.contest.entries().count(), 1);
}

#[test]
fn a_join_when_every_seat_is_confirmed_or_held_is_contest_full() {
    let mut w = World::open(FEE, 2);
    w.paid_entry(1);
    w.pending_entry(2);
    assert_eq!(w.seats(), (1, 1, 0));
    assert_eq!(w.join(3), Err(DomainError::ContestFull));
    // The held seat comes back when its hold runs out.
    w.advance(HOLD_MINUTES);
    w.run(Command::Tick);
    w.joined(3);
    assert_eq!(w.seats(), (1, 1, 0));
}

// ---------------------------------------------------------------------------
// Settlement.
// ---------------------------------------------------------------------------

/// A locked paid contest: users 1, 2 and 3 confirmed (pool 1500), user 4's
/// entry expired at the lock.
fn locked_with_three_paid() -> World {
    let mut w = World::open(FEE, 5);
    for u in 1..=3 {
        w.paid_entry(u);
    }
    w.pending_entry(4);
    w.run(Command::Lock);
    w
}

#[track_caller]
fn assert_names_rule(standings: Vec<Standing>, words: &str) {
    let mut w = locked_with_three_paid();
    match w.try_run(&Command::Settle(standings)) {
        Err(DomainError::Validation(rules)) => assert!(
            rules
                .iter()
                .any(|r| r.field == "standings" && r.rule.contains(words)),
            "no rule about {words:?} in {rules:?}"
        ),
        other => panic!("expected a rule about {words:?}, got {other:?}"),
    }
    assert_eq!(w.contest.state, Locked);
}

#[test]
fn settling_with_a_user_without_a_confirmed_entry_names_that_rule() {
    let expired = user(4);
    assert_names_rule(
        vec![standing(user(1), 1, 0), standing(expired, 2, 0)],
        "every user_id must hold a confirmed entry",
    );
    assert_names_rule(
        vec![standing(user(77), 1, 0)],
        "every user_id must hold a confirmed entry",
    );
}

#[test]
fn settling_with_rank_zero_names_the_ranks_rule() {
    assert_names_rule(
        vec![standing(user(1), 0, 0), standing(user(2), 1, 0)],
        "ranks start at 1",
    );
}

#[test]
fn settling_with_ranks_not_starting_at_1_names_the_ranks_rule() {
    assert_names_rule(
        vec![standing(user(1), 2, 0), standing(user(2), 3, 0)],
        "ranks start at 1",
    );
}

#[test]
fn settling_with_a_duplicate_user_names_that_rule() {
    assert_names_rule(
        vec![standing(user(1), 1, 0), standing(user(1), 2, 0)],
        "a user_id may appear once",
    );
}

#[test]
fn settling_with_a_negative_prize_names_that_rule() {
    assert_names_rule(
        vec![standing(user(1), 1, 600), standing(user(2), 2, -1)],
        "prize_cents must not be negative",
    );
}

#[test]
fn settling_with_prizes_over_the_pool_names_that_rule() {
    // Pool: 500 × 3 confirmed (user 4's expired entry does not count).
    assert_names_rule(
        vec![standing(user(1), 1, 1000), standing(user(2), 2, 501)],
        "prize pool",
    );
    // A free contest has no pool.
    let mut free = World::open(0, 3);
    free.joined(1);
    free.run(Command::Lock);
    assert!(matches!(
        free.try_run(&Command::Settle(vec![standing(user(1), 1, 1)])),
        Err(DomainError::Validation(_))
    ));
}

#[test]
fn valid_standings_settle_the_contest_and_are_stored_sorted_by_rank() {
    let mut w = locked_with_three_paid();
    assert_eq!(w.contest.prize_pool(), 1500);
    let given = vec![
        standing(user(3), 3, 0),
        standing(user(1), 1, 1000),
        standing(user(2), 2, 500),
    ];
    let events = w.run(Command::Settle(given));
    let sorted = vec![
        standing(user(1), 1, 1000),
        standing(user(2), 2, 500),
        standing(user(3), 3, 0),
    ];
    assert_eq!(
        events,
        vec![
            Event::StandingsRecorded {
                standings: sorted.clone()
            },
            Event::StateChanged {
                from: Locked,
                to: Settled,
                automatic: false
            },
        ]
    );
    assert_eq!(w.contest.state, Settled);
    assert_eq!(w.contest.standings, Some(sorted));
}

// Regression: `validate_standings` used `rules.dedup()`, which drops only
// *consecutive* duplicates, so two strangers with the first at rank 0 gave
// [confirmed entry, ranks start at 1, confirmed entry, ranks start at 1].
// Found by this test; fixed in src/domain/contest.rs while it was written.
#[test]
fn a_rule_broken_by_several_standings_is_named_once() {
    let mut w = locked_with_three_paid();
    match w.try_run(&Command::Settle(vec![
        standing(user(70), 0, 0),
        standing(user(71), 1, 0),
    ])) {
        Err(DomainError::Validation(rules)) => {
            let mut unique = rules.clone();
            unique.sort_by_key(|r| r.rule);
            unique.dedup();
            assert_eq!(rules.len(), unique.len(), "rules named twice: {rules:?}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// next_deadline()
// ---------------------------------------------------------------------------

#[test]
fn next_deadline_is_none_for_a_draft() {
    assert_eq!(World::draft(FEE, 3).contest.next_deadline(), None);
}

#[test]
fn next_deadline_is_locks_at_for_an_open_contest_with_no_hold() {
    let mut w = World::open(FEE, 3);
    assert_eq!(w.contest.next_deadline(), Some(w.contest.details.locks_at));
    w.paid_entry(1);
    assert_eq!(w.contest.next_deadline(), Some(w.contest.details.locks_at));
}

#[test]
fn next_deadline_is_the_earliest_pending_hold_when_it_comes_before_locks_at() {
    let mut w = World::open(FEE, 3);
    w.pending_entry(1);
    w.advance(5);
    w.pending_entry(2);
    assert_eq!(
        w.contest.next_deadline(),
        Some(t0() + Duration::minutes(15))
    );
    w.advance(10);
    w.run(Command::Tick);
    assert_eq!(
        w.contest.next_deadline(),
        Some(t0() + Duration::minutes(20))
    );
    // A hold running past locks_at: the lock comes first.
    let mut late = World::open(FEE, 3);
    late.advance(LOCKS_AFTER_MINUTES - 5);
    late.pending_entry(1);
    assert_eq!(
        late.contest.next_deadline(),
        Some(late.contest.details.locks_at)
    );
}

#[test]
fn next_deadline_is_a_pending_hold_even_when_the_contest_is_not_open() {
    // Not reachable through commands (lock and cancel expire holds), but a
    // restored row may hold one: its hold is still due.
    let hold = t0() + Duration::minutes(15);
    let entry = Entry {
        id: Uuid::from_u128(9),
        user_id: user(1),
        status: PendingPayment,
        amount_cents: FEE,
        currency: "usd".to_owned(),
        hold_expires_at: Some(hold),
        payment_intent_id: None,
        last_payment_error: None,
        created_at: t0(),
        updated_at: t0(),
    };
    let c = Contest::restore(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        details(FEE, 3),
        Locked,
        7,
        None,
        t0(),
        t0(),
        vec![entry],
    );
    assert_eq!(c.next_deadline(), Some(hold));
}

#[test]
fn next_deadline_is_none_when_nothing_is_due() {
    let mut locked = locked_with_one_paid_entrant();
    assert_eq!(locked.contest.next_deadline(), None);
    locked.run(Command::Settle(vec![standing(user(1), 1, 0)]));
    assert_eq!(locked.contest.next_deadline(), None);
    let mut cancelled = World::open(FEE, 3);
    cancelled.pending_entry(1);
    cancelled.run(Command::Cancel);
    assert_eq!(cancelled.contest.next_deadline(), None);
}

// ---------------------------------------------------------------------------
// Contract questions (not failures of the contract as the brief states it;
// see the report). `decide` is given `ctx.now` but acts on due timers only
// when a Tick comes: between `hold_expires_at` (or `locks_at`) and the
// timer firing, the contest behaves as if the instant had not passed.
// ---------------------------------------------------------------------------

// Deadlines hold at their instant, not when a timer fires: before any other
// command the contest actor applies a due tick (`actors/contest.rs`, the
// catch-up before `run_command`). These two tests model that order.

#[test]
fn a_payment_after_hold_expires_at_is_refunded_even_before_the_timer_fires() {
    let mut w = World::open(FEE, 2);
    let (id, pi) = w.pending_entry(1);
    w.advance(HOLD_MINUTES + 1);
    assert!(w.contest.next_deadline().is_some_and(|d| d <= w.ctx.now));
    w.run(Command::Tick);
    w.pay(&pi);
    assert_eq!(w.status(id), RefundPending);
}

#[test]
fn a_join_after_locks_at_is_refused_even_before_the_timer_fires() {
    let mut w = World::open(FEE, 2);
    w.advance(LOCKS_AFTER_MINUTES + 1);
    assert!(w.contest.next_deadline().is_some_and(|d| d <= w.ctx.now));
    w.run(Command::Tick);
    assert!(w.join(1).is_err());
}
