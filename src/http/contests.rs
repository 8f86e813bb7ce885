//! `/v1/contests`: create, list, read, edit, and the lifecycle actions.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::Digest as _;
use uuid::Uuid;

use super::views::ContestView;
use crate::actors::{ActorError, Execute};
use crate::auth::access::{self, Action, Relation};
use crate::auth::extract::AuthUser;
use crate::auth::roles::Role;
use crate::domain::{
    Command, Contest, ContestDetails, ContestPatch, ContestState, DomainError, Standing,
};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::startup::AppState;
use crate::store::contests::{self, ContestRow, Visibility};

/// A domain or actor refusal, in api.md's codes.
pub fn actor_error(e: ActorError) -> ApiError {
    match e {
        ActorError::Domain(d) => domain_error(d),
        ActorError::StaleVersion { current } => ApiError::new(ErrorCode::InvalidTransition)
            .with_message("the contest has changed (If-Match)")
            .with_details(serde_json::json!({ "current_version": current })),
        ActorError::NotFound => ApiError::new(ErrorCode::NotFound).with_message("no such contest"),
        ActorError::Unavailable => ApiError::new(ErrorCode::ServiceUnavailable)
            .with_message("the contest is busy; retry shortly")
            .with_retry_after(1),
        ActorError::Internal => ApiError::internal(anyhow::anyhow!("contest actor failed")),
    }
}

pub fn domain_error(e: DomainError) -> ApiError {
    match e {
        DomainError::InvalidTransition { state, action } => {
            ApiError::new(ErrorCode::InvalidTransition)
                .with_message(format!("a {state} contest does not allow {action}"))
                .with_details(serde_json::json!({ "state": state, "action": action }))
        }
        DomainError::ContestFull => ApiError::new(ErrorCode::ContestFull),
        DomainError::AlreadyEntered => ApiError::new(ErrorCode::AlreadyEntered),
        DomainError::NotEntered => ApiError::new(ErrorCode::NotFound)
            .with_message("you hold no live entry in this contest"),
        DomainError::UnknownEntry => {
            ApiError::new(ErrorCode::NotFound).with_message("no such entry")
        }
        DomainError::Validation(rules) => {
            let mut fields = serde_json::Map::new();
            for r in rules {
                let text = match fields.get(r.field).and_then(|v| v.as_str()) {
                    Some(prev) => format!("{prev}; {}", r.rule),
                    None => r.rule.to_owned(),
                };
                fields.insert(r.field.to_owned(), text.into());
            }
            ApiError::new(ErrorCode::ValidationFailed)
                .with_details(serde_json::json!({ "fields": fields }))
        }
    }
}

/// The contest, once the access matrix allows `action` on it to `user`
/// (404 when there is no such contest).
pub async fn authorized_contest(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
    action: Action,
) -> Result<ContestRow, ApiError> {
    let row = contests::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound).with_message("no such contest"))?;
    let relation = Relation {
        own: row.organizer_id == user.id,
        entrant: false,
    };
    let draft = row.state() == ContestState::Draft;
    access::check(&user.roles, relation, action, draft)?;
    Ok(row)
}

/// Most contests an instance remembers the organizer of.
const ORGANIZER_CACHE: usize = 200_000;

/// Joining and withdrawing depend only on who organizes the contest (the
/// matrix's `Enter` row does not depend on the state), and that never
/// changes: it is cached, so that a join reads nothing before its actor.
pub async fn authorize_entering(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
) -> Result<(), ApiError> {
    let cached = state.organizers.get(&id).map(|o| *o);
    let organizer = match cached {
        Some(organizer) => organizer,
        None => {
            let organizer = contests::organizer_of(&state.db, id)
                .await?
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::NotFound).with_message("no such contest")
                })?;
            if state.organizers.len() < ORGANIZER_CACHE {
                state.organizers.insert(id, organizer);
            }
            organizer
        }
    };
    let relation = Relation {
        own: organizer == user.id,
        entrant: false,
    };
    access::check(&user.roles, relation, Action::Enter, false)
}

/// `If-Match: <version>` (quotes and `W/` tolerated).
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("if-match") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidRequest)
                .with_message("If-Match must be a contest version")
        })
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContestRequest {
    /// 1 to 120 characters.
    pub title: String,
    /// At most 2000 characters.
    pub description: Option<String>,
    /// 0 (free) to 100000.
    pub entry_fee_cents: i64,
    /// Lowercase ISO code; the first configured currency ("usd") when absent.
    pub currency: Option<String>,
    /// 1 to 100000.
    pub capacity: i64,
    /// When the contest locks itself; must be in the future.
    pub locks_at: DateTime<Utc>,
}

fn capacity(value: i64) -> Result<i32, ApiError> {
    i32::try_from(value).map_err(|_| ApiError::validation(&[("capacity", "1 to 100000")]))
}

/// Creates a contest in `draft` (organizers and admins). `Idempotency-Key`
/// replays the first answer for the same body; another body with the same
/// key is `409 IDEMPOTENCY_KEY_REUSED`.
#[utoipa::path(
    tag = "contests",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first answer")),
    request_body = CreateContestRequest,
    responses(
        (status = 201, body = ContestView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "IDEMPOTENCY_KEY_REUSED", body = ErrorBody), (status = 422, body = ErrorBody),
    )
)]
#[post("/v1/contests")]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateContestRequest>,
) -> Result<HttpResponse, ApiError> {
    let relation = Relation {
        own: user.roles.has(Role::Organizer),
        entrant: false,
    };
    access::check(&user.roles, relation, Action::CreateContest, false)?;
    let body = body.into_inner();
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidRequest)
                        .with_message("Idempotency-Key must be 1 to 255 visible characters")
                })?
                .to_owned(),
        ),
    };
    let now = Utc::now();
    let details = ContestDetails {
        title: body.title.clone(),
        description: body.description.clone().unwrap_or_default(),
        entry_fee_cents: body.entry_fee_cents,
        currency: body
            .currency
            .clone()
            .or_else(|| state.settings.contests.currencies.first().cloned())
            .unwrap_or_default(),
        capacity: capacity(body.capacity)?,
        locks_at: body.locks_at,
    };
    details
        .validate(&state.settings.contests.currencies, now)
        .map_err(domain_error)?;
    let contest = Contest::new(Uuid::new_v4(), user.id, details, now);

    let mut tx = state.db.begin().await?;
    if let Some(key) = &key {
        let hash =
            sha2::Sha256::digest(serde_json::to_vec(&body).map_err(ApiError::internal)?).to_vec();
        let claimed = sqlx::query!(
            r#"INSERT INTO idempotency_key (user_id, key, request_hash, response_status, response_body)
               VALUES ($1, $2, $3, 0, '{}') ON CONFLICT DO NOTHING"#,
            user.id,
            key,
            hash,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            let stored = sqlx::query!(
                r#"SELECT request_hash, response_status, response_body FROM idempotency_key
                   WHERE user_id = $1 AND key = $2"#,
                user.id,
                key
            )
            .fetch_one(&mut *tx)
            .await?;
            if stored.request_hash != hash {
                return Err(ApiError::new(ErrorCode::IdempotencyKeyReused));
            }
            let status = actix_web::http::StatusCode::from_u16(stored.response_status as u16)
                .unwrap_or(actix_web::http::StatusCode::CREATED);
            return Ok(HttpResponse::build(status).json(stored.response_body));
        }
    }
    contests::insert_new(&mut tx, &contest, user.id).await?;
    let view = serde_json::to_value(ContestView::of(&contest)).map_err(ApiError::internal)?;
    if let Some(key) = &key {
        sqlx::query!(
            r#"UPDATE idempotency_key SET response_status = 201, response_body = $3, updated_at = now()
               WHERE user_id = $1 AND key = $2"#,
            user.id,
            key,
            view
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only contests in this state.
    pub state: Option<ContestState>,
    /// 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ContestPage {
    pub items: Vec<ContestView>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(row: &ContestRow) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        row.created_at.timestamp_micros(),
        row.id
    ))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, id) = text.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// Contests, newest first. Drafts appear only to their organizer and admins.
#[utoipa::path(
    tag = "contests",
    operation_id = "list_contests",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = ContestPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
#[get("/v1/contests")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidRequest).with_message("limit must be 1 to 100"));
    }
    let after = match &query.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidRequest).with_message("cursor is not one of ours")
        })?),
        None => None,
    };
    let visibility = Visibility {
        viewer: user.id,
        all_drafts: user.roles.has(Role::Admin),
    };
    let rows = contests::list(&state.db, query.state, &visibility, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<ContestRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = more.then(|| rows.last().map(encode_cursor)).flatten();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let standings = if row.state() == ContestState::Settled {
            Some(contests::standings(&state.db, row.id).await?)
        } else {
            None
        };
        items.push(ContestView::from_row(row, standings));
    }
    Ok(HttpResponse::Ok().json(ContestPage { items, next_cursor }))
}

/// One contest.
#[utoipa::path(
    tag = "contests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ContestView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/v1/contests/{id}")]
pub async fn read(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = authorized_contest(&state, &user, *path, Action::ReadContest).await?;
    let standings = if row.state() == ContestState::Settled {
        Some(contests::standings(&state.db, row.id).await?)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ContestView::from_row(row, standings)))
}

/// Runs a lifecycle command on the contest's actor and answers its view.
async fn manage(
    req: &HttpRequest,
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
    command: Command,
) -> Result<HttpResponse, ApiError> {
    authorized_contest(state, user, id, Action::ManageContest).await?;
    let msg = Execute {
        command,
        actor: Some(user.id),
        expected_version: if_match(req.headers())?,
        stripe_event: None,
    };
    let reply = state.registry.execute(id, msg).await.map_err(actor_error)?;
    Ok(HttpResponse::Ok().json(ContestView::from_row(reply.contest, reply.standings)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchContestRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    pub entry_fee_cents: Option<i64>,
    pub currency: Option<String>,
    pub capacity: Option<i64>,
    pub locks_at: Option<DateTime<Utc>>,
}

/// Edits a draft (its organizer, admins).
#[utoipa::path(
    tag = "contests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<i64>, Header, description = "the expected version")),
    request_body = PatchContestRequest,
    responses(
        (status = 200, body = ContestView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    )
)]
#[patch("/v1/contests/{id}")]
pub async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<PatchContestRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let patch = ContestPatch {
        title: body.title,
        description: body.description,
        entry_fee_cents: body.entry_fee_cents,
        currency: body.currency,
        capacity: body.capacity.map(capacity).transpose()?,
        locks_at: body.locks_at,
    };
    manage(&req, &state, &user, *path, Command::Edit(patch)).await
}

macro_rules! lifecycle_route {
    ($name:ident, $path:literal, $command:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            tag = "contests",
            security(("bearer" = [])),
            params(("id" = Uuid, Path), ("If-Match" = Option<i64>, Header, description = "the expected version")),
            responses(
                (status = 200, body = ContestView), (status = 403, body = ErrorBody),
                (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
            )
        )]
        #[post($path)]
        pub async fn $name(
            req: HttpRequest,
            state: web::Data<AppState>,
            user: AuthUser,
            path: web::Path<Uuid>,
        ) -> Result<HttpResponse, ApiError> {
            manage(&req, &state, &user, *path, $command).await
        }
    };
}

lifecycle_route!(
    open,
    "/v1/contests/{id}/open",
    Command::Open,
    "Opens a draft for entries."
);
lifecycle_route!(
    lock,
    "/v1/contests/{id}/lock",
    Command::Lock,
    "Locks an open contest; pending entries expire."
);
lifecycle_route!(
    cancel,
    "/v1/contests/{id}/cancel",
    Command::Cancel,
    "Cancels a contest; paid entries are refunded."
);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StandingInput {
    pub user_id: Uuid,
    pub rank: i64,
    pub prize_cents: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    pub standings: Vec<StandingInput>,
}

/// Settles a locked contest with its final standings (lifecycle.md,
/// "Settlement").
#[utoipa::path(
    tag = "contests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<i64>, Header, description = "the expected version")),
    request_body = SettleRequest,
    responses(
        (status = 200, body = ContestView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, description = "a standings rule is broken", body = ErrorBody),
    )
)]
#[post("/v1/contests/{id}/settle")]
pub async fn settle(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<SettleRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut standings = Vec::with_capacity(body.standings.len());
    for s in &body.standings {
        let rank = i32::try_from(s.rank)
            .map_err(|_| ApiError::validation(&[("standings", "ranks start at 1")]))?;
        standings.push(Standing {
            user_id: s.user_id,
            rank,
            prize_cents: s.prize_cents,
        });
    }
    manage(&req, &state, &user, *path, Command::Settle(standings)).await
}
