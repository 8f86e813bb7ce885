//! SQL for contests, entries, standings, the transition log and the payment
//! outbox. Only the contest actor writes a contest after its creation, and
//! always through [`persist`].

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{
    Contest, ContestDetails, ContestState, Entry, EntryStatus, Event, Standing, touched_entry,
};

/// A contest row, as lists and views show it.
#[derive(Debug, Clone)]
pub struct ContestRow {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub description: String,
    pub entry_fee_cents: i64,
    pub currency: String,
    pub capacity: i32,
    pub locks_at: DateTime<Utc>,
    pub state: String,
    pub version: i64,
    pub seats_confirmed: i32,
    pub seats_pending: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ContestRow {
    pub fn of(contest: &Contest) -> ContestRow {
        let d = &contest.details;
        ContestRow {
            id: contest.id,
            organizer_id: contest.organizer_id,
            title: d.title.clone(),
            description: d.description.clone(),
            entry_fee_cents: d.entry_fee_cents,
            currency: d.currency.clone(),
            capacity: d.capacity,
            locks_at: d.locks_at,
            state: contest.state.as_str().to_owned(),
            version: contest.version,
            seats_confirmed: contest.seats_confirmed(),
            seats_pending: contest.seats_pending(),
            created_at: contest.created_at,
            updated_at: contest.updated_at,
        }
    }

    pub fn state(&self) -> ContestState {
        ContestState::parse(&self.state).unwrap_or(ContestState::Draft)
    }
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub contest_id: Uuid,
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub amount_cents: i64,
    pub currency: String,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub payment_intent_id: Option<String>,
    pub last_payment_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EntryRow {
    pub fn of(contest_id: Uuid, e: &Entry) -> EntryRow {
        EntryRow {
            contest_id,
            id: e.id,
            user_id: e.user_id,
            status: e.status.as_str().to_owned(),
            amount_cents: e.amount_cents,
            currency: e.currency.clone(),
            hold_expires_at: e.hold_expires_at,
            payment_intent_id: e.payment_intent_id.clone(),
            last_payment_error: e.last_payment_error.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }

    fn into_entry(self) -> Option<Entry> {
        Some(Entry {
            id: self.id,
            user_id: self.user_id,
            status: EntryStatus::parse(&self.status)?,
            amount_cents: self.amount_cents,
            currency: self.currency,
            hold_expires_at: self.hold_expires_at,
            payment_intent_id: self.payment_intent_id,
            last_payment_error: self.last_payment_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Creates a draft (version 1) with its first transition-log row.
pub async fn insert_new(
    tx: &mut Transaction<'_, Postgres>,
    contest: &Contest,
    actor: Uuid,
) -> Result<(), sqlx::Error> {
    let d = &contest.details;
    sqlx::query!(
        r#"INSERT INTO contest (id, organizer_id, title, description, entry_fee_cents, currency,
                                capacity, locks_at, state, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"#,
        contest.id,
        contest.organizer_id,
        d.title,
        d.description,
        d.entry_fee_cents,
        d.currency,
        d.capacity,
        d.locks_at,
        contest.state.as_str(),
        contest.version,
        contest.created_at,
    )
    .execute(&mut **tx)
    .await?;
    let events = serde_json::json!([{ "type": "created", "details": d }]);
    sqlx::query!(
        r#"INSERT INTO contest_transition (contest_id, version, kind, events, actor_user_id)
           VALUES ($1, $2, 'create', $3, $4)"#,
        contest.id,
        contest.version,
        events,
        actor,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Loads a contest with all its entries and standings.
pub async fn load(db: &PgPool, id: Uuid) -> Result<Option<Contest>, sqlx::Error> {
    let Some(row) = find(db, id).await? else {
        return Ok(None);
    };
    let entries = sqlx::query_as!(
        EntryRow,
        r#"SELECT contest_id, id, user_id, status, amount_cents, currency, hold_expires_at,
                  payment_intent_id, last_payment_error, created_at, updated_at
           FROM entry WHERE contest_id = $1"#,
        id
    )
    .fetch_all(db)
    .await?;
    let standings = if row.state() == ContestState::Settled {
        Some(standings(db, id).await?)
    } else {
        None
    };
    let state = row.state();
    Ok(Some(Contest::restore(
        row.id,
        row.organizer_id,
        ContestDetails {
            title: row.title,
            description: row.description,
            entry_fee_cents: row.entry_fee_cents,
            currency: row.currency,
            capacity: row.capacity,
            locks_at: row.locks_at,
        },
        state,
        row.version,
        standings,
        row.created_at,
        row.updated_at,
        entries
            .into_iter()
            .filter_map(EntryRow::into_entry)
            .collect(),
    )))
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ContestRow>, sqlx::Error> {
    sqlx::query_as!(
        ContestRow,
        r#"SELECT id, organizer_id, title, description, entry_fee_cents, currency, capacity,
                  locks_at, state, version, seats_confirmed, seats_pending, created_at, updated_at
           FROM contest WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Who organizes a contest (it never changes).
pub async fn organizer_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT organizer_id FROM contest WHERE id = $1", id)
        .fetch_optional(db)
        .await
}

pub async fn standings(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Standing>, sqlx::Error> {
    sqlx::query_as!(
        Standing,
        r#"SELECT user_id, rank, prize_cents FROM contest_standing
           WHERE contest_id = $1 ORDER BY rank, user_id"#,
        id
    )
    .fetch_all(db)
    .await
}

/// A Stripe event that caused a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEventRef {
    pub id: String,
    pub kind: String,
}

/// Records a Stripe event that changes nothing; `false` when it was
/// recorded before (a replay).
pub async fn record_stripe_event(
    db: impl PgExecutor<'_>,
    event: &StripeEventRef,
    contest: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"INSERT INTO stripe_event (id, type, contest_id) VALUES ($1, $2, $3)
           ON CONFLICT (id) DO NOTHING"#,
        event.id,
        event.kind,
        contest
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One accepted transition of a batch.
#[derive(Debug, Clone)]
pub struct Transition {
    pub version: i64,
    pub kind: &'static str,
    pub events: Vec<Event>,
    pub actor: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub stripe_event: Option<StripeEventRef>,
}

/// What a batch commit writes, in order.
#[derive(Debug, Clone, Copy)]
pub enum BatchItem<'a> {
    Transition(&'a Transition),
    /// A Stripe event whose command changed nothing (recorded so that a
    /// replay is known), with its position in the caller's batch.
    Event(usize, &'a StripeEventRef),
}

/// What [`persist_batch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchPersisted {
    /// Committed; for each `Event` item, whether it had been seen before.
    Written { duplicates: Vec<(usize, bool)> },
    /// Another writer moved the contest on, or applied one of the Stripe
    /// events first: nothing was written.
    Lost,
}

/// Writes a batch of accepted transitions in one transaction (group
/// commit): the contest row at its final version, guarded by the version
/// before the first transition; the final state of every entry the events
/// touched; the standings; one transition-log row per transition, each with
/// its own version; the payment tasks; and the Stripe events.
pub async fn persist_batch(
    db: &PgPool,
    contest: &Contest,
    items: &[BatchItem<'_>],
) -> Result<BatchPersisted, sqlx::Error> {
    let transitions: Vec<&Transition> = items
        .iter()
        .filter_map(|i| match i {
            BatchItem::Transition(t) => Some(*t),
            BatchItem::Event(..) => None,
        })
        .collect();
    let mut tx = db.begin().await?;
    for t in &transitions {
        if let Some(event) = &t.stripe_event
            && !record_stripe_event(&mut *tx, event, Some(contest.id)).await?
        {
            return Ok(BatchPersisted::Lost);
        }
    }
    if let Some(first) = transitions.first() {
        let d = &contest.details;
        let updated = sqlx::query!(
            r#"UPDATE contest
               SET title = $3, description = $4, entry_fee_cents = $5, currency = $6,
                   capacity = $7, locks_at = $8, state = $9, version = $10,
                   seats_confirmed = $11, seats_pending = $12, next_deadline = $13,
                   updated_at = $14
               WHERE id = $1 AND version = $2"#,
            contest.id,
            first.version - 1,
            d.title,
            d.description,
            d.entry_fee_cents,
            d.currency,
            d.capacity,
            d.locks_at,
            contest.state.as_str(),
            contest.version,
            contest.seats_confirmed(),
            contest.seats_pending(),
            contest.next_deadline(),
            contest.updated_at,
        )
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(BatchPersisted::Lost);
        }

        let mut touched: Vec<Uuid> = transitions
            .iter()
            .flat_map(|t| t.events.iter().filter_map(touched_entry))
            .collect();
        touched.sort();
        touched.dedup();
        let rows: Vec<EntryRow> = touched
            .iter()
            .filter_map(|id| contest.entry(*id))
            .map(|e| EntryRow::of(contest.id, e))
            .collect();
        upsert_entries(&mut tx, &rows).await?;

        for event in transitions.iter().flat_map(|t| &t.events) {
            if let Event::StandingsRecorded { standings } = event {
                let users: Vec<Uuid> = standings.iter().map(|s| s.user_id).collect();
                let ranks: Vec<i32> = standings.iter().map(|s| s.rank).collect();
                let prizes: Vec<i64> = standings.iter().map(|s| s.prize_cents).collect();
                sqlx::query!(
                    r#"INSERT INTO contest_standing (contest_id, user_id, rank, prize_cents)
                       SELECT $1, * FROM UNNEST($2::uuid[], $3::int[], $4::bigint[])"#,
                    contest.id,
                    &users,
                    &ranks,
                    &prizes,
                )
                .execute(&mut *tx)
                .await?;
            }
        }

        let versions: Vec<i64> = transitions.iter().map(|t| t.version).collect();
        let kinds: Vec<String> = transitions.iter().map(|t| t.kind.to_owned()).collect();
        let events: Vec<serde_json::Value> = transitions
            .iter()
            .map(|t| serde_json::to_value(&t.events))
            .collect::<Result<_, _>>()
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let actors: Vec<Option<Uuid>> = transitions.iter().map(|t| t.actor).collect();
        let ats: Vec<DateTime<Utc>> = transitions.iter().map(|t| t.at).collect();
        sqlx::query!(
            r#"INSERT INTO contest_transition (contest_id, version, kind, events, actor_user_id, created_at)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::jsonb[], $5::uuid[], $6::timestamptz[])"#,
            contest.id,
            &versions,
            &kinds,
            &events,
            &actors as &[Option<Uuid>],
            &ats,
        )
        .execute(&mut *tx)
        .await?;

        let all_events: Vec<Event> = transitions.iter().flat_map(|t| t.events.clone()).collect();
        insert_payment_tasks(&mut tx, contest, &all_events).await?;
    }
    let mut duplicates = Vec::new();
    for item in items {
        if let BatchItem::Event(i, event) = item {
            let first = record_stripe_event(&mut *tx, event, Some(contest.id)).await?;
            duplicates.push((*i, !first));
        }
    }
    tx.commit().await?;
    Ok(BatchPersisted::Written { duplicates })
}

async fn upsert_entries(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[EntryRow],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&EntryRow) -> Uuid| rows.iter().map(f).collect::<Vec<_>>();
    let contest_ids = col(|r| r.contest_id);
    let ids = col(|r| r.id);
    let users = col(|r| r.user_id);
    let statuses: Vec<String> = rows.iter().map(|r| r.status.clone()).collect();
    let amounts: Vec<i64> = rows.iter().map(|r| r.amount_cents).collect();
    let currencies: Vec<String> = rows.iter().map(|r| r.currency.clone()).collect();
    let holds: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.hold_expires_at).collect();
    let pis: Vec<Option<String>> = rows.iter().map(|r| r.payment_intent_id.clone()).collect();
    let errors: Vec<Option<String>> = rows.iter().map(|r| r.last_payment_error.clone()).collect();
    let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated_at).collect();
    sqlx::query!(
        r#"INSERT INTO entry (contest_id, id, user_id, status, amount_cents, currency,
                              hold_expires_at, payment_intent_id, last_payment_error,
                              created_at, updated_at)
           SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[],
                                $6::text[], $7::timestamptz[], $8::text[], $9::text[],
                                $10::timestamptz[], $11::timestamptz[])
           ON CONFLICT (contest_id, id) DO UPDATE SET
               status = EXCLUDED.status,
               hold_expires_at = EXCLUDED.hold_expires_at,
               payment_intent_id = EXCLUDED.payment_intent_id,
               last_payment_error = EXCLUDED.last_payment_error,
               updated_at = EXCLUDED.updated_at"#,
        &contest_ids,
        &ids,
        &users,
        &statuses,
        &amounts,
        &currencies,
        &holds as &[Option<DateTime<Utc>>],
        &pis as &[Option<String>],
        &errors as &[Option<String>],
        &created,
        &updated,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The Stripe effects a transition needs (architecture.md, "Outbox"):
/// cancel the PaymentIntent of an entry whose seat was released unpaid,
/// refund an entry whose money must go back.
async fn insert_payment_tasks(
    tx: &mut Transaction<'_, Postgres>,
    contest: &Contest,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    for event in events {
        let Event::EntryStatusChanged {
            entry_id, from, to, ..
        } = event
        else {
            continue;
        };
        let Some(entry) = contest.entry(*entry_id) else {
            continue;
        };
        let kind = match (from, to) {
            (EntryStatus::PendingPayment, EntryStatus::Expired | EntryStatus::Withdrawn) => {
                "cancel_payment_intent"
            }
            (_, EntryStatus::RefundPending) => "refund",
            _ => continue,
        };
        if entry.payment_intent_id.is_none() && kind == "cancel_payment_intent" {
            continue;
        }
        let key = format!(
            "entry-{}-{}",
            entry.id,
            if kind == "refund" { "refund" } else { "cancel" }
        );
        sqlx::query!(
            r#"INSERT INTO payment_task (id, contest_id, entry_id, kind, idempotency_key)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT ON CONSTRAINT payment_task_once DO NOTHING"#,
            Uuid::new_v4(),
            contest.id,
            entry.id,
            kind,
            key,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Contests with a deadline due at `now`, oldest first.
pub async fn due(db: &PgPool, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT id FROM contest WHERE next_deadline <= $1 ORDER BY next_deadline LIMIT $2"#,
        now,
        limit
    )
    .fetch_all(db)
    .await
}

/// Who may see what in a listing.
pub struct Visibility {
    pub viewer: Uuid,
    /// Admins see every draft; others only their own.
    pub all_drafts: bool,
}

/// A page of contests, newest first, after the cursor `(created_at, id)`.
pub async fn list(
    db: &PgPool,
    state: Option<ContestState>,
    visibility: &Visibility,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ContestRow>, sqlx::Error> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as!(
        ContestRow,
        r#"SELECT id, organizer_id, title, description, entry_fee_cents, currency, capacity,
                  locks_at, state, version, seats_confirmed, seats_pending, created_at, updated_at
           FROM contest
           WHERE ($1::text IS NULL OR state = $1)
             AND (state <> 'draft' OR $2 OR organizer_id = $3)
             AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
           ORDER BY created_at DESC, id DESC
           LIMIT $6"#,
        state.map(|s| s.as_str()),
        visibility.all_drafts,
        visibility.viewer,
        after_at,
        after_id,
        limit,
    )
    .fetch_all(db)
    .await
}

pub async fn entries(db: impl PgExecutor<'_>, contest: Uuid) -> Result<Vec<EntryRow>, sqlx::Error> {
    sqlx::query_as!(
        EntryRow,
        r#"SELECT contest_id, id, user_id, status, amount_cents, currency, hold_expires_at,
                  payment_intent_id, last_payment_error, created_at, updated_at
           FROM entry WHERE contest_id = $1 ORDER BY created_at, id"#,
        contest
    )
    .fetch_all(db)
    .await
}

/// The user's newest entry in a contest.
pub async fn entry_of_user(
    db: impl PgExecutor<'_>,
    contest: Uuid,
    user: Uuid,
) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as!(
        EntryRow,
        r#"SELECT contest_id, id, user_id, status, amount_cents, currency, hold_expires_at,
                  payment_intent_id, last_payment_error, created_at, updated_at
           FROM entry WHERE contest_id = $1 AND user_id = $2
           ORDER BY created_at DESC, id DESC LIMIT 1"#,
        contest,
        user
    )
    .fetch_optional(db)
    .await
}

pub async fn entries_of_user(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<Vec<EntryRow>, sqlx::Error> {
    sqlx::query_as!(
        EntryRow,
        r#"SELECT contest_id, id, user_id, status, amount_cents, currency, hold_expires_at,
                  payment_intent_id, last_payment_error, created_at, updated_at
           FROM entry WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500"#,
        user
    )
    .fetch_all(db)
    .await
}

/// Whether a Stripe event was recorded already.
pub async fn stripe_event_seen(db: impl PgExecutor<'_>, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM stripe_event WHERE id = $1) AS "x!""#,
        id
    )
    .fetch_one(db)
    .await
}

/// The contest of the entry that holds this PaymentIntent.
pub async fn contest_of_payment_intent(
    db: impl PgExecutor<'_>,
    payment_intent: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT contest_id FROM entry WHERE payment_intent_id = $1",
        payment_intent
    )
    .fetch_optional(db)
    .await
}

/// The open contests where the user holds a live entry.
pub async fn open_contests_entered_by(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT e.contest_id FROM entry e JOIN contest c ON c.id = e.contest_id
           WHERE e.user_id = $1 AND e.status IN ('pending_payment', 'confirmed')
             AND c.state = 'open'"#,
        user
    )
    .fetch_all(db)
    .await
}
