//! Durability and several instances (lifecycle.md invariants 1, 2, 5 and 6;
//! architecture.md, "Persistence" and "Several instances"): two instances on
//! one database never oversell, a join answered 2xx survives a SIGKILL of
//! the server, and a restarted server resumes its contests from Postgres.
//!
//! Every check is made against the database, which is the truth: actors are
//! caches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::apple::{AppleKey, KeyServer, apple_claims};
use common::child::Server;
use common::{AppleApp, CLIENT_ID, TestApp, access, contest_body, open_contest};
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// One fixed signing key shared by every instance of a test, so that a
/// token issued by one instance is accepted by the others.
fn signing_keys() -> String {
    format!(
        "durability:{}",
        base64::engine::general_purpose::STANDARD.encode([42_u8; 32])
    )
}

/// An Apple-enabled app with a fixed signing key: without one, each
/// instance of the `test` environment generates its own, and a token of one
/// instance would be refused by another. `second_instance` starts with the
/// same variables, so with the same key.
async fn first_instance() -> AppleApp {
    AppleApp::spawn_with(|vars| {
        vars.insert("JWT_SIGNING_KEYS".into(), signing_keys());
    })
    .await
}

/// The body of a free contest of `capacity` seats.
fn free_contest(capacity: i32) -> Value {
    let mut body = contest_body();
    body["capacity"] = json!(capacity);
    body["entry_fee_cents"] = json!(0);
    body
}

/// A signed-in user: the Apple `sub`, the service's user id, a token.
#[derive(Debug, Clone)]
struct User {
    sub: String,
    id: Uuid,
    token: String,
}

impl User {
    fn of(sub: &str, session: &Value) -> User {
        User {
            sub: sub.to_owned(),
            id: Uuid::parse_str(session["user"]["id"].as_str().unwrap()).unwrap(),
            token: access(session).to_owned(),
        }
    }
}

/// What a request got: an answer (status, error code or entry), or no
/// answer at all.
#[derive(Debug, Clone)]
enum Outcome {
    Answer {
        status: u16,
        code: Option<String>,
        entry_id: Option<Uuid>,
        entry_status: Option<String>,
        body: Value,
    },
    NoAnswer(String),
}

impl Outcome {
    async fn of(sent: Result<reqwest::Response, reqwest::Error>) -> Outcome {
        let res = match sent {
            Ok(res) => res,
            Err(e) => return Outcome::NoAnswer(e.to_string()),
        };
        let status = res.status().as_u16();
        let body: Value = match res.json().await {
            Ok(body) => body,
            Err(e) => return Outcome::NoAnswer(format!("status {status}, body lost: {e}")),
        };
        let code = body["error"]["code"].as_str().map(str::to_owned);
        let entry_id = body["entry"]["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok());
        let entry_status = body["entry"]["status"].as_str().map(str::to_owned);
        Outcome::Answer {
            status,
            code,
            entry_id,
            entry_status,
            body,
        }
    }

    fn is_2xx(&self) -> bool {
        matches!(self, Outcome::Answer { status, .. } if (200..300).contains(status))
    }

    fn code(&self) -> Option<&str> {
        match self {
            Outcome::Answer { code, .. } => code.as_deref(),
            Outcome::NoAnswer(_) => None,
        }
    }
}

/// `POST /v1/contests/{id}/entries` against `base` as `token`.
async fn join(client: &reqwest::Client, base: &str, contest: Uuid, token: &str) -> Outcome {
    Outcome::of(
        client
            .post(format!("{base}/v1/contests/{contest}/entries"))
            .bearer_auth(token)
            .send()
            .await,
    )
    .await
}

/// The contest as `GET /v1/contests/{id}` shows it.
async fn contest_view(app: &TestApp, contest: Uuid, token: &str) -> Value {
    let res = app
        .authed(Method::GET, &format!("/v1/contests/{contest}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "read contest {contest}");
    res.json().await.unwrap()
}

/// What the database holds for one contest, after the invariants were
/// checked on it.
#[derive(Debug)]
struct Persisted {
    version: i64,
    capacity: i32,
    confirmed: i64,
    /// Every entry: id -> (user, status).
    entries: HashMap<Uuid, (Uuid, String)>,
    /// Transition kinds by version.
    kinds: Vec<String>,
}

/// Checks invariants 1, 2 and 5 on what Postgres holds for `contest` and
/// returns it: live seats within capacity, one live entry per user, the
/// transition log gapless from 1 to `contest.version`, and the seat counters
/// equal to the entries.
async fn check_invariants(db: &PgPool, contest: Uuid) -> Persisted {
    let (version, capacity, seats_confirmed, seats_pending): (i64, i32, i32, i32) = sqlx::query_as(
        "SELECT version, capacity, seats_confirmed, seats_pending FROM contest WHERE id = $1",
    )
    .bind(contest)
    .fetch_one(db)
    .await
    .unwrap();
    let rows: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT id, user_id, status FROM entry WHERE contest_id = $1")
            .bind(contest)
            .fetch_all(db)
            .await
            .unwrap();
    let count = |status: &str| rows.iter().filter(|r| r.2 == status).count() as i64;
    let confirmed = count("confirmed");
    let pending = count("pending_payment");

    // Invariant 1.
    assert!(
        confirmed + pending <= i64::from(capacity),
        "oversold: {confirmed} confirmed + {pending} pending > capacity {capacity}"
    );
    assert_eq!(
        (i64::from(seats_confirmed), i64::from(seats_pending)),
        (confirmed, pending),
        "contest counters (seats_confirmed, seats_pending) differ from the entries"
    );

    // Invariant 2.
    let mut live_by_user: HashMap<Uuid, usize> = HashMap::new();
    for (_, user, status) in &rows {
        if status == "confirmed" || status == "pending_payment" {
            *live_by_user.entry(*user).or_default() += 1;
        }
    }
    let doubled: Vec<_> = live_by_user.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "users with two live entries: {doubled:?}"
    );

    // Invariant 5.
    let log: Vec<(i64, String)> = sqlx::query_as(
        "SELECT version, kind FROM contest_transition WHERE contest_id = $1 ORDER BY version",
    )
    .bind(contest)
    .fetch_all(db)
    .await
    .unwrap();
    let versions: Vec<i64> = log.iter().map(|(v, _)| *v).collect();
    let expected: Vec<i64> = (1..=version).collect();
    if versions != expected {
        let present: HashSet<i64> = versions.iter().copied().collect();
        let missing: Vec<i64> = expected
            .iter()
            .copied()
            .filter(|v| !present.contains(v))
            .collect();
        let extra: Vec<i64> = versions.iter().copied().filter(|v| *v > version).collect();
        panic!(
            "transition log is not 1..={version}: {} rows, missing {missing:?}, beyond the \
             contest's version {extra:?}",
            versions.len()
        );
    }

    Persisted {
        version,
        capacity,
        confirmed,
        entries: rows
            .into_iter()
            .map(|(id, user, status)| (id, (user, status)))
            .collect(),
        kinds: log.into_iter().map(|(_, kind)| kind).collect(),
    }
}

// ------------------------------------------------------- two instances

#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    full: usize,
    already: usize,
    unavailable: usize,
}

#[actix_web::test]
async fn two_instances_on_one_database_never_oversell() {
    const CAPACITY: i32 = 30;
    const USERS: usize = 120;
    // One user in six (20) sends the same join to both instances at once;
    // spread over the whole run, so some do it while seats are left.
    let double = |i: usize| i % 6 == 5;

    let a = first_instance().await;
    let b = a.second_instance().await;
    let organizer = a.sign_in_with_roles("organizer", &["organizer"]).await;
    let contest: Uuid = open_contest(&a, access(&organizer), &free_contest(CAPACITY))
        .await
        .parse()
        .unwrap();

    // Every token comes from `a`; `b` must accept it (same key, same
    // database).
    let mut users = Vec::new();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(16) {
        let sessions = join_all(chunk.iter().map(|i| {
            let a = &a;
            async move {
                let sub = format!("joiner-{i}");
                let session = a.sign_in(&sub).await;
                User::of(&sub, &session)
            }
        }))
        .await;
        users.extend(sessions);
    }
    let me = b
        .authed(Method::GET, "/v1/me", &users[0].token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "a token of `a` is valid on `b`");

    // Everybody at once: most users through one instance (alternating),
    // the double senders through both at the same time.
    let instances = [&a.app, &b];
    let mut sends = Vec::new();
    for i in 0..users.len() {
        if double(i) {
            sends.push((i, 0));
            sends.push((i, 1));
        } else {
            sends.push((i, i % 2));
        }
    }
    let started = Instant::now();
    let outcomes: Vec<(usize, usize, Outcome)> = join_all(sends.iter().map(|&(i, via)| {
        let app = instances[via];
        let token = users[i].token.clone();
        async move {
            (
                i,
                via,
                join(&app.client, &app.address, contest, &token).await,
            )
        }
    }))
    .await;
    let storm = started.elapsed();

    // Every answer is one the API may give, and its entry is the caller's.
    let mut tally = Tally::default();
    let mut acked: HashMap<usize, Vec<Uuid>> = HashMap::new();
    let mut unavailable_users: Vec<usize> = Vec::new();
    for (i, via, outcome) in &outcomes {
        let user = &users[*i];
        match outcome {
            Outcome::Answer {
                status: 201,
                entry_id: Some(entry),
                entry_status: Some(entry_status),
                body,
                ..
            } => {
                assert_eq!(entry_status, "confirmed", "a free join confirms: {body}");
                assert_eq!(
                    body["entry"]["user_id"],
                    user.id.to_string(),
                    "the entry is the caller's: {body}"
                );
                tally.accepted += 1;
                acked.entry(*i).or_default().push(*entry);
            }
            Outcome::Answer {
                status: 409, code, ..
            } if code.as_deref() == Some("CONTEST_FULL") => tally.full += 1,
            Outcome::Answer {
                status: 409, code, ..
            } if code.as_deref() == Some("ALREADY_ENTERED") && double(*i) => {
                tally.already += 1;
            }
            Outcome::Answer {
                status: 503, code, ..
            } if code.as_deref() == Some("SERVICE_UNAVAILABLE") => {
                tally.unavailable += 1;
                unavailable_users.push(*i);
            }
            other => panic!(
                "join of {} (user {i}) via instance {via}: unexpected {other:?}",
                user.sub
            ),
        }
    }
    println!(
        "two instances, capacity {CAPACITY}, {} joins from {} users in {storm:?}: {tally:?} \
         (503 for users {unavailable_users:?})",
        outcomes.len(),
        users.len()
    );
    for (i, entries) in &acked {
        assert_eq!(
            entries.len(),
            1,
            "user {i} got two 2xx joins (two entries): {entries:?}"
        );
    }
    for i in (0..USERS).filter(|i| double(*i)) {
        let answers: Vec<_> = outcomes
            .iter()
            .filter(|(j, _, _)| *j == i)
            .map(|(_, via, o)| (via, o.code().map(str::to_owned), o.is_2xx()))
            .collect();
        if answers
            .iter()
            .any(|(_, code, _)| code.as_deref() == Some("ALREADY_ENTERED"))
        {
            assert!(
                acked.contains_key(&i),
                "double sender {i} was told ALREADY_ENTERED but no join of it was accepted: \
                 {answers:?}"
            );
        }
    }

    // The database: invariants, exactly the capacity sold (demand is four
    // times the capacity), and the entries are exactly the 2xx answers.
    let persisted = check_invariants(&a.db, contest).await;
    assert_eq!(persisted.capacity, CAPACITY);
    assert_eq!(
        persisted.confirmed,
        i64::from(CAPACITY),
        "120 users for 30 seats: every seat is sold ({tally:?})"
    );
    for (i, entries) in &acked {
        for entry in entries {
            assert_eq!(
                persisted.entries.get(entry),
                Some(&(users[*i].id, "confirmed".to_owned())),
                "the join of user {i} was answered 2xx (entry {entry}) but the database has \
                 not confirmed it"
            );
        }
    }
    let acked_ids: HashSet<Uuid> = acked.values().flatten().copied().collect();
    let unacked: Vec<_> = persisted
        .entries
        .iter()
        .filter(|(id, _)| !acked_ids.contains(*id))
        .collect();
    assert!(
        unacked.is_empty(),
        "entries in the database whose join was not answered 2xx (a 503 that took effect?): \
         {unacked:?}; 503 for users {unavailable_users:?}"
    );
    assert_eq!(
        persisted.version,
        2 + tally.accepted as i64,
        "version = 1 (create) + 1 (open) + one per accepted join"
    );
    assert_eq!(persisted.kinds[0], "create");
    assert_eq!(persisted.kinds[1], "open");
    assert!(persisted.kinds[2..].iter().all(|k| k == "join"));

    // Both instances agree with the database now: every user without a
    // seat, through either instance, is told the contest is full (not
    // ALREADY_ENTERED from a cached entry that was never written), and
    // nothing changes.
    let seated: HashSet<Uuid> = persisted.entries.values().map(|(u, _)| *u).collect();
    let outsiders: Vec<&User> = users.iter().filter(|u| !seated.contains(&u.id)).collect();
    let probes = join_all(outsiders.iter().flat_map(|user| {
        instances
            .iter()
            .enumerate()
            .map(move |(via, app)| async move {
                (
                    user.sub.clone(),
                    via,
                    join(&app.client, &app.address, contest, &user.token).await,
                )
            })
    }))
    .await;
    let wrong: Vec<_> = probes
        .iter()
        .filter(|(_, _, o)| o.code() != Some("CONTEST_FULL"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} joins of users without a seat, after the contest filled, were not \
         CONTEST_FULL: {wrong:?}",
        wrong.len(),
        probes.len()
    );
    let after = check_invariants(&a.db, contest).await;
    assert_eq!(after.version, persisted.version, "refusals change nothing");

    b.handle.stop(true).await;
    a.handle.stop(true).await;
}

// ------------------------------------------------------------- SIGKILL

/// Signs `sub` in through the child's `/v1/auth/apple`.
async fn sign_in_via(client: &reqwest::Client, server: &Server, key: &AppleKey, sub: &str) -> User {
    let token = key.sign(&apple_claims(sub, CLIENT_ID));
    let res = client
        .post(server.url("/v1/auth/apple"))
        .json(&json!({ "identity_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "sign-in of {sub}");
    let session: Value = res.json().await.unwrap();
    User::of(sub, &session)
}

async fn sign_in_many(
    client: &reqwest::Client,
    server: &Server,
    key: &AppleKey,
    subs: impl Iterator<Item = String>,
) -> Vec<User> {
    futures_util::stream::iter(subs)
        .map(|sub| async move { sign_in_via(client, server, key, &sub).await })
        .buffered(16)
        .collect()
        .await
}

#[actix_web::test]
async fn a_join_answered_2xx_survives_a_sigkill() {
    const USERS: usize = 300;
    const KILL_AFTER: usize = 100;

    contest_backend::auth::install_crypto_provider();
    let db = common::TestDb::create().await;
    let key = AppleKey::generate("apple-key-1");
    let keys = KeyServer::start(&[&key]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    let first = Server::start(&db.url, &[("APPLE_JWKS_URL", &keys.url())]).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    let organizer = sign_in_via(&client, &first, &key, "organizer").await;
    sqlx::query("UPDATE app_user SET roles = '{organizer}' WHERE id = $1")
        .bind(organizer.id)
        .execute(&pool)
        .await
        .unwrap();
    let res = client
        .post(first.url("/v1/contests"))
        .bearer_auth(&organizer.token)
        .json(&free_contest(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create contest");
    let contest: Uuid = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let res = client
        .post(first.url(&format!("/v1/contests/{contest}/open")))
        .bearer_auth(&organizer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "open contest");

    let users = sign_in_many(
        &client,
        &first,
        &key,
        (0..USERS).map(|i| format!("joiner-{i}")),
    )
    .await;

    // A stream of joins, 16 in flight. Once 100 are answered, and after a
    // random 0-40 ms more (so that the kill lands at any point of a write,
    // a commit included), SIGKILL, with the other joins in flight.
    let answered = AtomicUsize::new(0);
    let started = Instant::now();
    let joins = futures_util::stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let client = &client;
            let base = &first.base;
            async move { (i, join(client, base, contest, &user.token).await) }
        })
        .buffer_unordered(16)
        .inspect(|(_, outcome)| {
            if matches!(outcome, Outcome::Answer { .. }) {
                answered.fetch_add(1, Ordering::SeqCst);
            }
        })
        .collect::<Vec<(usize, Outcome)>>();
    let killer = async {
        while answered.load(Ordering::SeqCst) < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let jitter = Duration::from_micros((Uuid::new_v4().as_u128() % 40_000) as u64);
        tokio::time::sleep(jitter).await;
        let kill = Command::new("kill")
            .args(["-KILL", &first.pid().to_string()])
            .status()
            .unwrap();
        assert!(kill.success(), "kill -KILL {}", first.pid());
        (started.elapsed(), answered.load(Ordering::SeqCst))
    };
    let (outcomes, killed) = futures_util::future::join(joins, killer).await;
    let (killed_at, answered_at_kill) = killed;
    let mut first = first;
    let exit = first.child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "the server died of SIGKILL: {exit:?}"
    );

    let mut acked: Vec<(usize, Uuid)> = Vec::new();
    let mut unanswered: Vec<usize> = Vec::new();
    let mut errors: HashMap<String, usize> = HashMap::new();
    for (i, outcome) in &outcomes {
        match outcome {
            Outcome::Answer {
                status: 201,
                entry_id: Some(entry),
                entry_status: Some(status),
                ..
            } if status == "confirmed" => acked.push((*i, *entry)),
            Outcome::Answer { .. } => panic!("join of user {i}: unexpected {outcome:?}"),
            Outcome::NoAnswer(why) => {
                unanswered.push(*i);
                *errors.entry(why.clone()).or_default() += 1;
            }
        }
    }
    assert!(acked.len() >= KILL_AFTER, "{} acked", acked.len());

    // The same database, a new process.
    let second = Server::start(&db.url, &[("APPLE_JWKS_URL", &keys.url())]).await;
    let persisted = check_invariants(&pool, contest).await;
    let lost: Vec<_> = acked
        .iter()
        .filter(|(i, entry)| {
            persisted.entries.get(entry) != Some(&(users[*i].id, "confirmed".to_owned()))
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} joins answered 201 before the SIGKILL are not confirmed after the restart: \
         {lost:?}",
        lost.len()
    );
    let acked_ids: HashSet<Uuid> = acked.iter().map(|(_, e)| *e).collect();
    let in_flight_kept = persisted
        .entries
        .keys()
        .filter(|id| !acked_ids.contains(*id))
        .count();
    assert_eq!(
        persisted.version,
        2 + persisted.entries.len() as i64,
        "one transition per entry after create and open"
    );
    println!(
        "SIGKILL after {killed_at:?} ({answered_at_kill} answered then): {} joins answered \
         201, {} unanswered ({errors:?}), of which {} committed before the kill; after the \
         restart: version {}, {} confirmed",
        acked.len(),
        unanswered.len(),
        in_flight_kept,
        persisted.version,
        persisted.confirmed,
    );

    // The restarted server tells the users what they have.
    for (i, entry) in acked.iter().step_by(acked.len() / 5 + 1) {
        let res = client
            .get(second.url(&format!("/v1/contests/{contest}/entries/me")))
            .bearer_auth(&users[*i].token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "entries/me of user {i}");
        let view: Value = res.json().await.unwrap();
        assert_eq!(view["id"], entry.to_string(), "{view}");
        assert_eq!(view["status"], "confirmed", "{view}");
        let again = join(&client, &second.base, contest, &users[*i].token).await;
        assert_eq!(
            again.code(),
            Some("ALREADY_ENTERED"),
            "user {i} joins again after the restart: {again:?}"
        );
    }

    // And goes on: the users whose join never got an answer and is not in
    // the database, and new users, join.
    let seated: HashSet<Uuid> = persisted.entries.values().map(|(u, _)| *u).collect();
    let mut late: Vec<&User> = unanswered
        .iter()
        .map(|i| &users[*i])
        .filter(|u| !seated.contains(&u.id))
        .take(20)
        .collect();
    let newcomers = sign_in_many(
        &client,
        &second,
        &key,
        (0..10).map(|i| format!("newcomer-{i}")),
    )
    .await;
    late.extend(newcomers.iter());
    let late_outcomes = join_all(
        late.iter()
            .map(|u| join(&client, &second.base, contest, &u.token)),
    )
    .await;
    for (user, outcome) in late.iter().zip(&late_outcomes) {
        assert!(
            matches!(outcome, Outcome::Answer { status: 201, .. }),
            "join of {} after the restart: {outcome:?}",
            user.sub
        );
    }
    let after = check_invariants(&pool, contest).await;
    assert_eq!(after.confirmed, persisted.confirmed + late.len() as i64);
    assert_eq!(after.version, persisted.version + late.len() as i64);

    drop(second);
    drop(first);
    pool.close().await;
}

// ------------------------------------------------------------- restart

#[actix_web::test]
async fn a_restarted_server_resumes_contests_from_postgres() {
    let a = first_instance().await;
    let organizer = a.sign_in_with_roles("organizer", &["organizer"]).await;
    let contest: Uuid = open_contest(&a, access(&organizer), &free_contest(10))
        .await
        .parse()
        .unwrap();
    let mut users = Vec::new();
    for i in 0..4 {
        let sub = format!("joiner-{i}");
        users.push(User::of(&sub, &a.sign_in(&sub).await));
    }
    for user in &users[..3] {
        let outcome = join(&a.client, &a.address, contest, &user.token).await;
        assert!(
            matches!(outcome, Outcome::Answer { status: 201, .. }),
            "{outcome:?}"
        );
    }

    // A graceful stop, then a new process on the same database.
    a.handle.stop(true).await;
    let b = a.second_instance().await;
    let view = contest_view(&b, contest, access(&organizer)).await;
    assert_eq!(view["version"], 5, "create, open, three joins: {view}");
    assert_eq!(view["seats_confirmed"], 3, "{view}");

    let again = join(&b.client, &b.address, contest, &users[0].token).await;
    assert_eq!(
        again.code(),
        Some("ALREADY_ENTERED"),
        "the new instance knows the entries: {again:?}"
    );
    let fourth = join(&b.client, &b.address, contest, &users[3].token).await;
    assert!(
        matches!(fourth, Outcome::Answer { status: 201, .. }),
        "{fourth:?}"
    );
    let view = contest_view(&b, contest, access(&organizer)).await;
    assert_eq!(
        view["version"], 6,
        "the join continues at version 6: {view}"
    );
    assert_eq!(view["seats_confirmed"], 4, "{view}");
    assert_eq!(view["seats_left"], 6, "{view}");

    let persisted = check_invariants(&b.db, contest).await;
    assert_eq!(persisted.version, 6);
    assert_eq!(persisted.confirmed, 4);
    assert_eq!(
        persisted.kinds,
        ["create", "open", "join", "join", "join", "join"]
    );

    b.handle.stop(true).await;
}
