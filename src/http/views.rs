//! Wire types shared by several resources.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::roles::{Role, Roles};
use crate::auth::sessions::Session;
use crate::domain::{Contest, ContestState, Entry, EntryStatus, Standing};
use crate::store::contests::{ContestRow, EntryRow};
use crate::store::users::UserRow;

/// A user as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for UserView {
    fn from(row: UserRow) -> Self {
        UserView {
            id: row.id,
            display_name: row.display_name,
            email: row.email,
            roles: Roles::from_stored(&row.roles).iter().collect(),
            created_at: row.created_at,
        }
    }
}

/// The answer to a sign-in or a refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque; spent by its first use.
    pub refresh_token: String,
    pub user: UserView,
}

impl From<Session> for TokenResponse {
    fn from(s: Session) -> Self {
        TokenResponse {
            access_token: s.access_token,
            token_type: "Bearer",
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            user: s.user.into(),
        }
    }
}

/// A contest as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContestView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub organizer_id: Uuid,
    pub state: ContestState,
    pub version: i64,
    pub entry_fee_cents: i64,
    pub currency: String,
    pub capacity: i32,
    pub seats_confirmed: i32,
    pub seats_pending: i32,
    pub seats_left: i32,
    pub locks_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The final standings, once the contest is settled.
    pub standings: Option<Vec<Standing>>,
}

impl ContestView {
    pub fn from_row(row: ContestRow, standings: Option<Vec<Standing>>) -> Self {
        let state = row.state();
        ContestView {
            id: row.id,
            title: row.title,
            description: row.description,
            organizer_id: row.organizer_id,
            state,
            version: row.version,
            entry_fee_cents: row.entry_fee_cents,
            currency: row.currency,
            capacity: row.capacity,
            seats_confirmed: row.seats_confirmed,
            seats_pending: row.seats_pending,
            seats_left: (row.capacity - row.seats_confirmed - row.seats_pending).max(0),
            locks_at: row.locks_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            standings: standings.filter(|_| state == ContestState::Settled),
        }
    }

    pub fn of(contest: &Contest) -> Self {
        Self::from_row(ContestRow::of(contest), contest.standings.clone())
    }
}

/// An entry as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    pub id: Uuid,
    pub contest_id: Uuid,
    pub user_id: Uuid,
    pub status: EntryStatus,
    pub amount_cents: i64,
    pub currency: String,
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// Why the last payment attempt failed, while the entry waits for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_payment_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EntryRow> for EntryView {
    fn from(r: EntryRow) -> Self {
        EntryView {
            id: r.id,
            contest_id: r.contest_id,
            user_id: r.user_id,
            status: EntryStatus::parse(&r.status).unwrap_or(EntryStatus::Expired),
            amount_cents: r.amount_cents,
            currency: r.currency,
            hold_expires_at: r.hold_expires_at,
            last_payment_error: r.last_payment_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl EntryView {
    pub fn of(contest: Uuid, e: &Entry) -> Self {
        EntryRow::of(contest, e).into()
    }
}

/// What the app needs to confirm a payment with Stripe's SDK.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub payment_intent_id: String,
    pub client_secret: String,
    pub publishable_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JoinResponse {
    pub entry: EntryView,
    /// `null` for a free contest (the entry is confirmed at once).
    pub payment: Option<PaymentView>,
}
