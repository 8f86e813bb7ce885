use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DomainError;

pub type Timestamp = DateTime<Utc>;

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_ENTRY_FEE_CENTS: i64 = 100_000;
pub const MAX_CAPACITY: i32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContestState {
    Draft,
    Open,
    Locked,
    Settled,
    Cancelled,
}

impl ContestState {
    pub const ALL: [ContestState; 5] = [
        ContestState::Draft,
        ContestState::Open,
        ContestState::Locked,
        ContestState::Settled,
        ContestState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContestState::Draft => "draft",
            ContestState::Open => "open",
            ContestState::Locked => "locked",
            ContestState::Settled => "settled",
            ContestState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ContestState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ContestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    PendingPayment,
    Confirmed,
    Expired,
    Withdrawn,
    RefundPending,
    Refunded,
}

impl EntryStatus {
    pub const ALL: [EntryStatus; 6] = [
        EntryStatus::PendingPayment,
        EntryStatus::Confirmed,
        EntryStatus::Expired,
        EntryStatus::Withdrawn,
        EntryStatus::RefundPending,
        EntryStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::PendingPayment => "pending_payment",
            EntryStatus::Confirmed => "confirmed",
            EntryStatus::Expired => "expired",
            EntryStatus::Withdrawn => "withdrawn",
            EntryStatus::RefundPending => "refund_pending",
            EntryStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EntryStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// `pending_payment` and `confirmed` hold a seat (and are "live").
    pub fn holds_seat(self) -> bool {
        matches!(self, EntryStatus::PendingPayment | EntryStatus::Confirmed)
    }
}

impl fmt::Display for EntryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken validation rule: the field and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub field: &'static str,
    pub rule: &'static str,
}

/// What an organizer sets on a contest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContestDetails {
    pub title: String,
    pub description: String,
    pub entry_fee_cents: i64,
    pub currency: String,
    pub capacity: i32,
    pub locks_at: Timestamp,
}

impl ContestDetails {
    /// Checks every rule of api.md's create fields; `locks_at` must lie in
    /// the future.
    pub fn validate(&self, currencies: &[String], now: Timestamp) -> Result<(), DomainError> {
        let mut rules = Vec::new();
        let title = self.title.trim();
        if title.is_empty() || self.title.chars().count() > MAX_TITLE_CHARS {
            rules.push(Rule {
                field: "title",
                rule: "1 to 120 characters, not only spaces",
            });
        }
        if self.title.contains('\0') {
            rules.push(Rule {
                field: "title",
                rule: "must not contain NUL characters",
            });
        }
        if self.description.contains('\0') {
            rules.push(Rule {
                field: "description",
                rule: "must not contain NUL characters",
            });
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            rules.push(Rule {
                field: "description",
                rule: "at most 2000 characters",
            });
        }
        if !(0..=MAX_ENTRY_FEE_CENTS).contains(&self.entry_fee_cents) {
            rules.push(Rule {
                field: "entry_fee_cents",
                rule: "0 to 100000",
            });
        }
        if !currencies.contains(&self.currency) {
            rules.push(Rule {
                field: "currency",
                rule: "one of the configured currencies",
            });
        }
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            rules.push(Rule {
                field: "capacity",
                rule: "1 to 100000",
            });
        }
        if self.locks_at <= now {
            rules.push(Rule {
                field: "locks_at",
                rule: "must be in the future",
            });
        }
        if rules.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(rules))
        }
    }
}

/// A partial edit of a draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContestPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub entry_fee_cents: Option<i64>,
    pub currency: Option<String>,
    pub capacity: Option<i32>,
    pub locks_at: Option<Timestamp>,
}

impl ContestPatch {
    pub fn applied_to(&self, d: &ContestDetails) -> ContestDetails {
        ContestDetails {
            title: self.title.clone().unwrap_or_else(|| d.title.clone()),
            description: self
                .description
                .clone()
                .unwrap_or_else(|| d.description.clone()),
            entry_fee_cents: self.entry_fee_cents.unwrap_or(d.entry_fee_cents),
            currency: self.currency.clone().unwrap_or_else(|| d.currency.clone()),
            capacity: self.capacity.unwrap_or(d.capacity),
            locks_at: self.locks_at.unwrap_or(d.locks_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: EntryStatus,
    pub amount_cents: i64,
    pub currency: String,
    pub hold_expires_at: Option<Timestamp>,
    pub payment_intent_id: Option<String>,
    pub last_payment_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Standing {
    pub user_id: Uuid,
    pub rank: i32,
    pub prize_cents: i64,
}

/// Why an entry changed status; kept in the transition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryReason {
    Paid,
    PaidAfterHoldExpired,
    PaidAfterWithdrawal,
    PaidWhileNotOpen,
    PaidWrongAmount,
    HoldExpired,
    Withdrawn,
    ContestLocked,
    ContestCancelled,
    Refunded,
}

/// What happened. Events are what the transition log stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Edited {
        details: ContestDetails,
    },
    StateChanged {
        from: ContestState,
        to: ContestState,
        automatic: bool,
    },
    StandingsRecorded {
        standings: Vec<Standing>,
    },
    EntryCreated {
        entry: Entry,
    },
    EntryStatusChanged {
        entry_id: Uuid,
        from: EntryStatus,
        to: EntryStatus,
        reason: EntryReason,
    },
    PaymentIntentAttached {
        entry_id: Uuid,
        payment_intent_id: String,
    },
    PaymentFailureRecorded {
        entry_id: Uuid,
        error: String,
    },
}

/// What a caller (a user, Stripe, a timer) asks of a contest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Edit(ContestPatch),
    Open,
    Lock,
    Cancel,
    Settle(Vec<Standing>),
    /// `entry_id` is chosen by the caller, used when a new entry is made.
    Join {
        user_id: Uuid,
        entry_id: Uuid,
    },
    Withdraw {
        user_id: Uuid,
    },
    AttachPaymentIntent {
        entry_id: Uuid,
        payment_intent_id: String,
    },
    PaymentSucceeded {
        payment_intent_id: String,
        amount_cents: i64,
        currency: String,
    },
    PaymentFailed {
        payment_intent_id: String,
        error: String,
    },
    Refunded {
        payment_intent_id: String,
    },
    /// A timer: locks at `locks_at`, expires holds.
    Tick,
}

impl Command {
    /// The transition's name in the log and the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Edit(_) => "edit",
            Command::Open => "open",
            Command::Lock => "lock",
            Command::Cancel => "cancel",
            Command::Settle(_) => "settle",
            Command::Join { .. } => "join",
            Command::Withdraw { .. } => "withdraw",
            Command::AttachPaymentIntent { .. } => "attach_payment_intent",
            Command::PaymentSucceeded { .. } => "payment_succeeded",
            Command::PaymentFailed { .. } => "payment_failed",
            Command::Refunded { .. } => "refunded",
            Command::Tick => "tick",
        }
    }
}

/// What `decide` is told of the world.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub now: Timestamp,
    /// How long a paid entry's seat is held.
    pub hold: Duration,
    /// Accepted currencies (lowercase ISO codes).
    pub currencies: Vec<String>,
}

/// One contest and all its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contest {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub details: ContestDetails,
    pub state: ContestState,
    pub version: i64,
    pub standings: Option<Vec<Standing>>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    entries: BTreeMap<Uuid, Entry>,
    live_by_user: HashMap<Uuid, Uuid>,
    by_payment_intent: HashMap<String, Uuid>,
    seats_confirmed: i32,
    seats_pending: i32,
}

impl Contest {
    /// A new draft at version 1.
    pub fn new(id: Uuid, organizer_id: Uuid, details: ContestDetails, now: Timestamp) -> Self {
        Contest::restore(
            id,
            organizer_id,
            details,
            ContestState::Draft,
            1,
            None,
            now,
            now,
            Vec::new(),
        )
    }

    /// Rebuilds a contest from what was persisted.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        id: Uuid,
        organizer_id: Uuid,
        details: ContestDetails,
        state: ContestState,
        version: i64,
        standings: Option<Vec<Standing>>,
        created_at: Timestamp,
        updated_at: Timestamp,
        entries: Vec<Entry>,
    ) -> Self {
        let mut contest = Contest {
            id,
            organizer_id,
            details,
            state,
            version,
            standings,
            created_at,
            updated_at,
            entries: BTreeMap::new(),
            live_by_user: HashMap::new(),
            by_payment_intent: HashMap::new(),
            seats_confirmed: 0,
            seats_pending: 0,
        };
        for entry in entries {
            contest.insert_entry(entry);
        }
        contest
    }

    fn insert_entry(&mut self, entry: Entry) {
        if entry.status.holds_seat() {
            self.live_by_user.insert(entry.user_id, entry.id);
        }
        match entry.status {
            EntryStatus::Confirmed => self.seats_confirmed += 1,
            EntryStatus::PendingPayment => self.seats_pending += 1,
            _ => {}
        }
        if let Some(pi) = &entry.payment_intent_id {
            self.by_payment_intent.insert(pi.clone(), entry.id);
        }
        self.entries.insert(entry.id, entry);
    }

    pub fn seats_confirmed(&self) -> i32 {
        self.seats_confirmed
    }

    pub fn seats_pending(&self) -> i32 {
        self.seats_pending
    }

    pub fn seats_left(&self) -> i32 {
        (self.details.capacity - self.seats_confirmed - self.seats_pending).max(0)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn entry(&self, id: Uuid) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// The user's live (`pending_payment` or `confirmed`) entry.
    pub fn live_entry_of(&self, user: Uuid) -> Option<&Entry> {
        self.live_by_user
            .get(&user)
            .and_then(|id| self.entries.get(id))
    }

    /// The user's newest entry, live or not.
    pub fn latest_entry_of(&self, user: Uuid) -> Option<&Entry> {
        self.live_entry_of(user).or_else(|| {
            self.entries
                .values()
                .filter(|e| e.user_id == user)
                .max_by_key(|e| (e.created_at, e.id))
        })
    }

    pub fn entry_by_payment_intent(&self, pi: &str) -> Option<&Entry> {
        self.by_payment_intent
            .get(pi)
            .and_then(|id| self.entries.get(id))
    }

    /// The prize pool: `entry_fee_cents × confirmed`.
    pub fn prize_pool(&self) -> i64 {
        self.details.entry_fee_cents * i64::from(self.seats_confirmed)
    }

    /// The earliest instant a timer must fire, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let lock = (self.state == ContestState::Open).then_some(self.details.locks_at);
        let hold = self
            .entries
            .values()
            .filter(|e| e.status == EntryStatus::PendingPayment)
            .filter_map(|e| e.hold_expires_at)
            .min();
        match (lock, hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn status_change(&self, entry: &Entry, to: EntryStatus, reason: EntryReason) -> Event {
        Event::EntryStatusChanged {
            entry_id: entry.id,
            from: entry.status,
            to,
            reason,
        }
    }

    /// The events of locking: pending entries expire.
    fn lock_events(&self, automatic: bool) -> Vec<Event> {
        let mut events = vec![Event::StateChanged {
            from: self.state,
            to: ContestState::Locked,
            automatic,
        }];
        events.extend(
            self.entries
                .values()
                .filter(|e| e.status == EntryStatus::PendingPayment)
                .map(|e| self.status_change(e, EntryStatus::Expired, EntryReason::ContestLocked)),
        );
        events
    }

    fn validate_standings(&self, standings: &[Standing]) -> Result<(), DomainError> {
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        let mut total: i64 = 0;
        for s in standings {
            if !self
                .live_entry_of(s.user_id)
                .is_some_and(|e| e.status == EntryStatus::Confirmed)
            {
                rules.push(Rule {
                    field: "standings",
                    rule: "every user_id must hold a confirmed entry",
                });
            }
            if !seen.insert(s.user_id) {
                rules.push(Rule {
                    field: "standings",
                    rule: "a user_id may appear once",
                });
            }
            if s.rank < 1 {
                rules.push(Rule {
                    field: "standings",
                    rule: "ranks start at 1",
                });
            }
            if s.prize_cents < 0 {
                rules.push(Rule {
                    field: "standings",
                    rule: "prize_cents must not be negative",
                });
            }
            total = total.saturating_add(s.prize_cents.max(0));
        }
        if !standings.is_empty() && standings.iter().map(|s| s.rank).min() != Some(1) {
            rules.push(Rule {
                field: "standings",
                rule: "ranks start at 1",
            });
        }
        if total > self.prize_pool() {
            rules.push(Rule {
                field: "standings",
                rule: "the prizes must not exceed the prize pool (entry_fee_cents × confirmed)",
            });
        }
        let mut unique: Vec<Rule> = Vec::new();
        for rule in rules {
            if !unique.contains(&rule) {
                unique.push(rule);
            }
        }
        if unique.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(unique))
        }
    }
}

/// What happens when `command` meets `contest` (see the module comment).
pub fn decide(contest: &Contest, command: &Command, ctx: &Ctx) -> Result<Vec<Event>, DomainError> {
    use ContestState::*;
    let state = contest.state;
    match command {
        Command::Edit(patch) => {
            if state != Draft {
                return Err(DomainError::invalid(state, "edit"));
            }
            let details = patch.applied_to(&contest.details);
            details.validate(&ctx.currencies, ctx.now)?;
            if details == contest.details {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Edited { details }])
        }
        Command::Open => {
            if state != Draft {
                return Err(DomainError::invalid(state, "open"));
            }
            if contest.details.locks_at <= ctx.now {
                return Err(DomainError::rule("locks_at", "must be in the future"));
            }
            Ok(vec![Event::StateChanged {
                from: Draft,
                to: Open,
                automatic: false,
            }])
        }
        Command::Lock => {
            if state != Open {
                return Err(DomainError::invalid(state, "lock"));
            }
            Ok(contest.lock_events(false))
        }
        Command::Cancel => {
            if !matches!(state, Draft | Open | Locked) {
                return Err(DomainError::invalid(state, "cancel"));
            }
            let mut events = vec![Event::StateChanged {
                from: state,
                to: Cancelled,
                automatic: false,
            }];
            for e in contest.entries.values() {
                match e.status {
                    EntryStatus::PendingPayment => events.push(contest.status_change(
                        e,
                        EntryStatus::Expired,
                        EntryReason::ContestCancelled,
                    )),
                    EntryStatus::Confirmed => events.push(contest.status_change(
                        e,
                        if e.amount_cents > 0 {
                            EntryStatus::RefundPending
                        } else {
                            EntryStatus::Withdrawn
                        },
                        EntryReason::ContestCancelled,
                    )),
                    _ => {}
                }
            }
            Ok(events)
        }
        Command::Settle(standings) => {
            if state != Locked {
                return Err(DomainError::invalid(state, "settle"));
            }
            contest.validate_standings(standings)?;
            let mut sorted = standings.clone();
            sorted.sort_by_key(|s| (s.rank, s.user_id));
            Ok(vec![
                Event::StandingsRecorded { standings: sorted },
                Event::StateChanged {
                    from: Locked,
                    to: Settled,
                    automatic: false,
                },
            ])
        }
        Command::Join { user_id, entry_id } => {
            if state != Open {
                return Err(DomainError::invalid(state, "join"));
            }
            if let Some(live) = contest.live_entry_of(*user_id) {
                return match live.status {
                    // A retry after a lost answer resumes the same entry.
                    EntryStatus::PendingPayment => Ok(Vec::new()),
                    _ => Err(DomainError::AlreadyEntered),
                };
            }
            if contest.seats_left() == 0 {
                return Err(DomainError::ContestFull);
            }
            if contest.entries.contains_key(entry_id) {
                return Err(DomainError::UnknownEntry);
            }
            let fee = contest.details.entry_fee_cents;
            let (status, hold) = if fee == 0 {
                (EntryStatus::Confirmed, None)
            } else {
                (EntryStatus::PendingPayment, Some(ctx.now + ctx.hold))
            };
            Ok(vec![Event::EntryCreated {
                entry: Entry {
                    id: *entry_id,
                    user_id: *user_id,
                    status,
                    amount_cents: fee,
                    currency: contest.details.currency.clone(),
                    hold_expires_at: hold,
                    payment_intent_id: None,
                    last_payment_error: None,
                    created_at: ctx.now,
                    updated_at: ctx.now,
                },
            }])
        }
        Command::Withdraw { user_id } => {
            if state != Open {
                return Err(DomainError::invalid(state, "withdraw"));
            }
            let entry = contest
                .live_entry_of(*user_id)
                .ok_or(DomainError::NotEntered)?;
            // A free entry has no money to give back: it is simply withdrawn.
            let to = match entry.status {
                EntryStatus::Confirmed if entry.amount_cents > 0 => EntryStatus::RefundPending,
                _ => EntryStatus::Withdrawn,
            };
            Ok(vec![contest.status_change(
                entry,
                to,
                EntryReason::Withdrawn,
            )])
        }
        Command::AttachPaymentIntent {
            entry_id,
            payment_intent_id,
        } => {
            let entry = contest
                .entries
                .get(entry_id)
                .ok_or(DomainError::UnknownEntry)?;
            match (
                &entry.payment_intent_id,
                contest.by_payment_intent.get(payment_intent_id),
            ) {
                (Some(pi), _) if pi == payment_intent_id => Ok(Vec::new()),
                (Some(_), _) | (None, Some(_)) => {
                    Err(DomainError::invalid(state, "attach_payment_intent"))
                }
                (None, None) => Ok(vec![Event::PaymentIntentAttached {
                    entry_id: *entry_id,
                    payment_intent_id: payment_intent_id.clone(),
                }]),
            }
        }
        Command::PaymentSucceeded {
            payment_intent_id,
            amount_cents,
            currency,
        } => {
            let entry = contest
                .entry_by_payment_intent(payment_intent_id)
                .ok_or(DomainError::UnknownEntry)?;
            let exact = *amount_cents == entry.amount_cents && *currency == entry.currency;
            let reason = match entry.status {
                EntryStatus::PendingPayment if state == Open && exact => {
                    return Ok(vec![contest.status_change(
                        entry,
                        EntryStatus::Confirmed,
                        EntryReason::Paid,
                    )]);
                }
                EntryStatus::PendingPayment if !exact => EntryReason::PaidWrongAmount,
                EntryStatus::PendingPayment => EntryReason::PaidWhileNotOpen,
                EntryStatus::Expired => EntryReason::PaidAfterHoldExpired,
                EntryStatus::Withdrawn => EntryReason::PaidAfterWithdrawal,
                // Already confirmed, refunding or refunded: a duplicate.
                EntryStatus::Confirmed | EntryStatus::RefundPending | EntryStatus::Refunded => {
                    return Ok(Vec::new());
                }
            };
            // The money is never kept for a seat that was not honoured.
            Ok(vec![contest.status_change(
                entry,
                EntryStatus::RefundPending,
                reason,
            )])
        }
        Command::PaymentFailed {
            payment_intent_id,
            error,
        } => {
            let entry = contest
                .entry_by_payment_intent(payment_intent_id)
                .ok_or(DomainError::UnknownEntry)?;
            if entry.status != EntryStatus::PendingPayment
                || entry.last_payment_error.as_deref() == Some(error.as_str())
            {
                return Ok(Vec::new());
            }
            Ok(vec![Event::PaymentFailureRecorded {
                entry_id: entry.id,
                error: error.clone(),
            }])
        }
        Command::Refunded { payment_intent_id } => {
            let entry = contest
                .entry_by_payment_intent(payment_intent_id)
                .ok_or(DomainError::UnknownEntry)?;
            if entry.status != EntryStatus::RefundPending {
                return Ok(Vec::new());
            }
            Ok(vec![contest.status_change(
                entry,
                EntryStatus::Refunded,
                EntryReason::Refunded,
            )])
        }
        Command::Tick => {
            if state == Open && contest.details.locks_at <= ctx.now {
                return Ok(contest.lock_events(true));
            }
            Ok(contest
                .entries
                .values()
                .filter(|e| {
                    e.status == EntryStatus::PendingPayment
                        && e.hold_expires_at.is_some_and(|t| t <= ctx.now)
                })
                .map(|e| contest.status_change(e, EntryStatus::Expired, EntryReason::HoldExpired))
                .collect())
        }
    }
}

/// Applies one event. `now` stamps `updated_at`.
pub fn apply(contest: &mut Contest, event: &Event, now: Timestamp) {
    contest.updated_at = now;
    match event {
        Event::Edited { details } => contest.details = details.clone(),
        Event::StateChanged { to, .. } => contest.state = *to,
        Event::StandingsRecorded { standings } => contest.standings = Some(standings.clone()),
        Event::EntryCreated { entry } => contest.insert_entry(entry.clone()),
        Event::EntryStatusChanged { entry_id, to, .. } => {
            let Some(entry) = contest.entries.get_mut(entry_id) else {
                return;
            };
            let from = entry.status;
            entry.status = *to;
            entry.updated_at = now;
            match from {
                EntryStatus::Confirmed => contest.seats_confirmed -= 1,
                EntryStatus::PendingPayment => contest.seats_pending -= 1,
                _ => {}
            }
            match to {
                EntryStatus::Confirmed => contest.seats_confirmed += 1,
                EntryStatus::PendingPayment => contest.seats_pending += 1,
                _ => {}
            }
            if !to.holds_seat() {
                if contest.live_by_user.get(&entry.user_id) == Some(entry_id) {
                    contest.live_by_user.remove(&entry.user_id);
                }
            } else {
                contest.live_by_user.insert(entry.user_id, *entry_id);
            }
            if *to == EntryStatus::Confirmed {
                entry.hold_expires_at = None;
            }
        }
        Event::PaymentIntentAttached {
            entry_id,
            payment_intent_id,
        } => {
            if let Some(entry) = contest.entries.get_mut(entry_id) {
                entry.payment_intent_id = Some(payment_intent_id.clone());
                entry.updated_at = now;
                contest
                    .by_payment_intent
                    .insert(payment_intent_id.clone(), *entry_id);
            }
        }
        Event::PaymentFailureRecorded { entry_id, error } => {
            if let Some(entry) = contest.entries.get_mut(entry_id) {
                entry.last_payment_error = Some(error.clone());
                entry.updated_at = now;
            }
        }
    }
}

/// The entries an event touched, to be written back.
pub fn touched_entry(event: &Event) -> Option<Uuid> {
    match event {
        Event::EntryCreated { entry } => Some(entry.id),
        Event::EntryStatusChanged { entry_id, .. }
        | Event::PaymentIntentAttached { entry_id, .. }
        | Event::PaymentFailureRecorded { entry_id, .. } => Some(*entry_id),
        Event::Edited { .. } | Event::StateChanged { .. } | Event::StandingsRecorded { .. } => None,
    }
}
