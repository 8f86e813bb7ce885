//! Contests and entries through HTTP: the lifecycle, idempotent creation,
//! conditional mutations, settlement, concurrency, supervision and durable
//! timers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    AppleApp, TestApp, access, assert_error, contest_body, create_contest, mint_users, open_contest,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn organizer(app: &AppleApp) -> String {
    access(&app.sign_in_with_roles("org", &["organizer"]).await).to_owned()
}

async fn post(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.authed(Method::POST, path, token).send().await.unwrap()
}

async fn contest(app: &TestApp, id: &str, token: &str) -> Value {
    let res = app
        .authed(Method::GET, &format!("/v1/contests/{id}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The transition log's versions and kinds, in order.
async fn transitions(app: &TestApp, id: &str) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT version, kind FROM contest_transition WHERE contest_id = $1::uuid ORDER BY version",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// Invariant 5: one row per version, gapless from 1 to the contest's version.
async fn assert_gapless(app: &TestApp, id: &str) {
    let log = transitions(app, id).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM contest WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let versions: Vec<i64> = log.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (1..=version).collect::<Vec<_>>(),
        "gapless transition log"
    );
}

#[actix_web::test]
async fn a_free_contest_runs_from_draft_to_settled() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let created = create_contest(&app, &org, &contest_body()).await;
    assert_eq!(created["state"], "draft");
    assert_eq!(created["version"], 1);
    assert_eq!(created["currency"], "usd");
    assert_eq!(created["seats_left"], 10);
    let id = created["id"].as_str().unwrap().to_owned();

    let res = app
        .authed(Method::PATCH, &format!("/v1/contests/{id}"), &org)
        .json(&json!({"title": "Saturday quiz", "capacity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(
        (edited["title"].as_str(), edited["version"].as_i64()),
        (Some("Saturday quiz"), Some(2))
    );

    assert_eq!(
        post(&app, &format!("/v1/contests/{id}/open"), &org)
            .await
            .status(),
        200
    );
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    let carol = app.sign_in("carol").await;
    let res = post(&app, &format!("/v1/contests/{id}/entries"), access(&alice)).await;
    assert_eq!(res.status(), 201);
    let joined: Value = res.json().await.unwrap();
    assert_eq!(joined["entry"]["status"], "confirmed");
    assert_eq!(joined["payment"], Value::Null);
    let res = post(&app, &format!("/v1/contests/{id}/entries"), access(&alice)).await;
    assert_error(res, 409, "ALREADY_ENTERED").await;
    assert_eq!(
        post(&app, &format!("/v1/contests/{id}/entries"), access(&bob))
            .await
            .status(),
        201
    );
    let res = post(&app, &format!("/v1/contests/{id}/entries"), access(&carol)).await;
    assert_error(res, 409, "CONTEST_FULL").await;

    // Bob leaves, Carol takes the seat, Bob cannot come back: full again.
    let res = app
        .authed(
            Method::DELETE,
            &format!("/v1/contests/{id}/entries/me"),
            access(&bob),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let left: Value = res.json().await.unwrap();
    assert_eq!(left["status"], "withdrawn");
    assert_eq!(
        post(&app, &format!("/v1/contests/{id}/entries"), access(&carol))
            .await
            .status(),
        201
    );
    let mine: Value = app
        .authed(
            Method::GET,
            &format!("/v1/contests/{id}/entries/me"),
            access(&bob),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["status"], "withdrawn");
    let entries: Vec<Value> = app
        .authed(Method::GET, &format!("/v1/contests/{id}/entries"), &org)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    let my_entries: Vec<Value> = app
        .authed(Method::GET, "/v1/me/entries", access(&carol))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(my_entries.len(), 1);

    assert_eq!(
        post(&app, &format!("/v1/contests/{id}/lock"), &org)
            .await
            .status(),
        200
    );
    let res = post(&app, &format!("/v1/contests/{id}/entries"), access(&bob)).await;
    let body = assert_error(res, 409, "INVALID_TRANSITION").await;
    assert_eq!(
        body["error"]["details"],
        json!({"state": "locked", "action": "join"})
    );

    let alice_id = alice["user"]["id"].as_str().unwrap();
    let res = app
        .authed(Method::POST, &format!("/v1/contests/{id}/settle"), &org)
        .json(&json!({"standings": [{"user_id": alice_id, "rank": 1, "prize_cents": 0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let settled: Value = res.json().await.unwrap();
    assert_eq!(settled["state"], "settled");
    assert_eq!(
        settled["standings"],
        json!([{"user_id": alice_id, "rank": 1, "prize_cents": 0}])
    );
    assert_eq!(
        contest(&app, &id, access(&bob)).await["standings"],
        settled["standings"]
    );

    let kinds: Vec<String> = transitions(&app, &id)
        .await
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(
        kinds,
        [
            "create", "edit", "open", "join", "join", "withdraw", "join", "lock", "settle"
        ]
    );
    assert_gapless(&app, &id).await;
    let res = post(&app, &format!("/v1/contests/{id}/cancel"), &org).await;
    assert_error(res, 409, "INVALID_TRANSITION").await;
}

#[actix_web::test]
async fn a_contest_with_broken_fields_is_refused_naming_each() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let res = app
        .authed(Method::POST, "/v1/contests", &org)
        .json(&json!({
            "title": " ",
            "description": "x".repeat(2001),
            "entry_fee_cents": 100_001,
            "currency": "eur",
            "capacity": 0,
            "locks_at": "2020-01-01T00:00:00Z",
        }))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, 422, "VALIDATION_FAILED").await;
    let fields = body["error"]["details"]["fields"].as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "capacity",
            "currency",
            "description",
            "entry_fee_cents",
            "locks_at",
            "title"
        ]
    );
    // Huge numbers are a type error, not an overflow.
    let mut big = contest_body();
    big["entry_fee_cents"] = json!(1e30);
    let res = app
        .authed(Method::POST, "/v1/contests", &org)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "INVALID_REQUEST").await;
    let mut big = contest_body();
    big["capacity"] = json!(9_999_999_999_i64);
    let res = app
        .authed(Method::POST, "/v1/contests", &org)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_error(res, 422, "VALIDATION_FAILED").await;
    let count: i64 = app.count("SELECT count(*) FROM contest").await;
    assert_eq!(count, 0, "nothing half-written");
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let body = contest_body();
    let send = |body: Value| {
        app.authed(Method::POST, "/v1/contests", &org)
            .header("idempotency-key", "create-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "same key, same body: same answer");
    let mut other = body.clone();
    other["title"] = "Another".into();
    assert_error(send(other).await.unwrap(), 409, "IDEMPOTENCY_KEY_REUSED").await;

    // Concurrent first uses of one key create one contest.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let req = app
            .authed(Method::POST, "/v1/contests", &org)
            .header("idempotency-key", "create-2")
            .json(&body);
        tasks.push(actix_web::rt::spawn(async move {
            let res = req.send().await.unwrap();
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap()["id"].clone(),
            )
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert_eq!(status, 201);
        ids.insert(id.to_string());
    }
    assert_eq!(ids.len(), 1);
    let count: i64 = app.count("SELECT count(*) FROM contest").await;
    assert_eq!(count, 2);
}

#[actix_web::test]
async fn if_match_with_a_stale_version_is_refused_with_the_current_one() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let id = create_contest(&app, &org, &contest_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .authed(Method::POST, &format!("/v1/contests/{id}/open"), &org)
        .header("if-match", "7")
        .send()
        .await
        .unwrap();
    let body = assert_error(res, 409, "INVALID_TRANSITION").await;
    assert_eq!(body["error"]["details"]["current_version"], 1);
    let res = app
        .authed(Method::POST, &format!("/v1/contests/{id}/open"), &org)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .authed(Method::POST, &format!("/v1/contests/{id}/lock"), &org)
        .header("if-match", "soon")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "INVALID_REQUEST").await;
}

#[actix_web::test]
async fn drafts_are_listed_only_for_their_organizer_and_admins() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let draft = create_contest(&app, &org, &contest_body()).await;
    let open = open_contest(&app, &org, &contest_body()).await;
    let user = app.sign_in("user").await;
    let listed = |token: String| {
        let req = app.authed(Method::GET, "/v1/contests?limit=1", &token);
        async move {
            let page: Value = req.send().await.unwrap().json().await.unwrap();
            page
        }
    };
    let page = listed(access(&user).to_owned()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], open.as_str());
    assert!(page["next_cursor"].is_null());
    let page = listed(org.clone()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let next: Value = app
        .authed(
            Method::GET,
            &format!("/v1/contests?limit=1&cursor={cursor}"),
            &org,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let both: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(next["items"].as_array().unwrap())
        .collect();
    assert!(both.iter().any(|c| c["id"] == draft["id"]));
    let res = app
        .authed(
            Method::GET,
            &format!("/v1/contests/{}", draft["id"].as_str().unwrap()),
            access(&user),
        )
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "NOT_FOUND").await;
    for bad in [
        "state=frozen",
        "limit=0",
        "limit=101",
        "cursor=%%%",
        "sort=asc",
    ] {
        let res = app
            .authed(Method::GET, &format!("/v1/contests?{bad}"), &org)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "INVALID_REQUEST").await;
    }
}

#[actix_web::test]
async fn settling_checks_every_rule_and_stores_the_standings() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let mut body = contest_body();
    body["entry_fee_cents"] = json!(0);
    let id = open_contest(&app, &org, &body).await;
    let users = mint_users(&app, 3).await;
    for (_, token) in &users {
        assert_eq!(
            post(&app, &format!("/v1/contests/{id}/entries"), token)
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        post(&app, &format!("/v1/contests/{id}/lock"), &org)
            .await
            .status(),
        200
    );
    let stranger = Uuid::new_v4();
    let (u0, u1) = (users[0].0, users[1].0);
    let cases = [
        (
            json!([{"user_id": stranger, "rank": 1, "prize_cents": 0}]),
            "every user_id must hold a confirmed entry",
        ),
        (
            json!([{"user_id": u0, "rank": 0, "prize_cents": 0}]),
            "ranks start at 1",
        ),
        (
            json!([{"user_id": u0, "rank": 2, "prize_cents": 0}]),
            "ranks start at 1",
        ),
        (
            json!([{"user_id": u0, "rank": 1, "prize_cents": 0}, {"user_id": u0, "rank": 2, "prize_cents": 0}]),
            "a user_id may appear once",
        ),
        (
            json!([{"user_id": u0, "rank": 1, "prize_cents": -5}]),
            "prize_cents must not be negative",
        ),
        // A free contest's pool is 0.
        (
            json!([{"user_id": u0, "rank": 1, "prize_cents": 1}]),
            "the prizes must not exceed the prize pool",
        ),
    ];
    for (standings, rule) in cases {
        let res = app
            .authed(Method::POST, &format!("/v1/contests/{id}/settle"), &org)
            .json(&json!({ "standings": standings }))
            .send()
            .await
            .unwrap();
        let body = assert_error(res, 422, "VALIDATION_FAILED").await;
        let named = body["error"]["details"]["fields"]["standings"]
            .as_str()
            .unwrap();
        assert!(named.contains(rule), "{named} names {rule}");
    }
    assert_eq!(
        contest(&app, &id, &org).await["state"],
        "locked",
        "nothing half-written"
    );
    let res = app
        .authed(Method::POST, &format!("/v1/contests/{id}/settle"), &org)
        .json(&json!({"standings": [
            {"user_id": u1, "rank": 2, "prize_cents": 0},
            {"user_id": u0, "rank": 1, "prize_cents": 0},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let settled: Value = res.json().await.unwrap();
    assert_eq!(settled["standings"][0]["user_id"], u0.to_string());
    assert_eq!(settled["standings"][1]["rank"], 2);
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM contest_standing WHERE contest_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, 2);
}

#[actix_web::test]
async fn five_hundred_concurrent_joins_fill_a_hundred_seats_exactly() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let mut body = contest_body();
    body["capacity"] = json!(100);
    let id = open_contest(&app, &org, &body).await;
    let users = mint_users(&app, 500).await;
    let mut tasks = Vec::new();
    let t0 = std::time::Instant::now();
    for (_, token) in users {
        let req = app.authed(Method::POST, &format!("/v1/contests/{id}/entries"), &token);
        tasks.push(actix_web::rt::spawn(async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            let code = body["error"]["code"].as_str().map(str::to_owned);
            if status == 503 {
                eprintln!("503: {}", body["error"]["message"]);
            }
            (status, code)
        }));
    }
    let (mut created, mut full, mut other) = (0, 0, Vec::new());
    let tasks: Vec<_> = futures_util::future::join_all(tasks).await;
    eprintln!("500 joins took {:?}", t0.elapsed());
    for t in tasks {
        match t.unwrap() {
            (201, _) => created += 1,
            (409, Some(code)) if code == "CONTEST_FULL" => full += 1,
            unexpected => other.push(unexpected),
        }
    }
    assert_eq!(
        (created, full, other.len()),
        (100, 400, 0),
        "unexpected: {other:?}"
    );
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM entry WHERE contest_id = $1::uuid AND status = 'confirmed'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(confirmed, 100);
    let view = contest(&app, &id, &org).await;
    assert_eq!(
        (
            view["seats_confirmed"].as_i64(),
            view["seats_left"].as_i64()
        ),
        (Some(100), Some(0))
    );
    assert_eq!(view["version"], 102, "create, open, 100 joins");
    assert_gapless(&app, &id).await;
    // Group commit: the crowd's joins shared transactions.
    let commits = app.state.metrics.persist_seconds_count();
    eprintln!("{commits} commits for 101 transitions");
    assert!(commits < 101, "{commits} commits for 101 transitions");
}

async fn actor_view(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.authed(Method::GET, &format!("/ops/actors/{id}"), token)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_panic_restarts_only_that_contests_actor_from_postgres() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let ops = access(&app.sign_in_with_roles("ops", &["ops"]).await).to_owned();
    let hot = open_contest(&app, &org, &contest_body()).await;
    let calm = open_contest(&app, &org, &contest_body()).await;
    let users = mint_users(&app, 3).await;
    assert_eq!(
        post(&app, &format!("/v1/contests/{hot}/entries"), &users[0].1)
            .await
            .status(),
        201
    );
    assert_eq!(
        post(&app, &format!("/v1/contests/{calm}/entries"), &users[0].1)
            .await
            .status(),
        201
    );
    let calm_before: Value = actor_view(&app, &ops, &calm).await.json().await.unwrap();

    assert!(
        app.state
            .registry
            .inject_panic(Uuid::parse_str(&hot).unwrap())
    );
    let res = post(&app, &format!("/v1/contests/{hot}/entries"), &users[1].1).await;
    assert_error(res, 500, "INTERNAL").await;
    // The next request succeeds, on an actor rebuilt from Postgres.
    let res = post(&app, &format!("/v1/contests/{hot}/entries"), &users[1].1).await;
    assert_eq!(res.status(), 201);
    let view: Value = actor_view(&app, &ops, &hot).await.json().await.unwrap();
    assert_eq!(view["restarts"], 1);
    assert_eq!(view["status"], "running");
    assert_eq!(
        view["version"], 4,
        "create, open, two joins: the panicked one left no trace"
    );
    let all: Value = app
        .authed(Method::GET, "/ops/actors", &ops)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["restarts_total"], 1);
    assert_eq!(all["active"], 2);
    // The other contest never noticed.
    let calm_after: Value = actor_view(&app, &ops, &calm).await.json().await.unwrap();
    assert_eq!(calm_after["activated_at"], calm_before["activated_at"]);
    assert_eq!(calm_after["restarts"], 0);
    assert_eq!(
        post(&app, &format!("/v1/contests/{calm}/entries"), &users[2].1)
            .await
            .status(),
        201
    );
    let metrics = app
        .authed(Method::GET, "/metrics", &ops)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("contest_actor_restarts_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("contest_transitions_total{kind=\"join\",outcome=\"panicked\"} 1"));
    assert_gapless(&app, &hot).await;
}

/// Waits (at most 3 s) until the contest's actor has stopped for idleness.
async fn wait_until_idle(app: &TestApp, ops: &str, id: &str) {
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while actor_view(app, ops, id).await.status() != 404 {
        assert!(std::time::Instant::now() < until, "the idle actor stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_state(app: &TestApp, token: &str, id: &str, state: &str, within: Duration) {
    let until = std::time::Instant::now() + within;
    loop {
        let now = contest(app, id, token).await;
        if now["state"] == state {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{id} still {} after {within:?}",
            now["state"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn an_idle_contest_whose_actor_stopped_locks_itself_at_locks_at() {
    let app = AppleApp::spawn_with(|vars| {
        vars.insert("APP__ACTORS__IDLE_SECS".into(), "1".into());
    })
    .await;
    let org = organizer(&app).await;
    let ops = access(&app.sign_in_with_roles("ops", &["ops"]).await).to_owned();
    let mut body = contest_body();
    body["locks_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339());
    let id = open_contest(&app, &org, &body).await;
    // The actor goes idle and stops well before locks_at.
    wait_until_idle(&app, &ops, &id).await;
    wait_for_state(&app, &org, &id, "locked", Duration::from_secs(8)).await;
    let last = transitions(&app, &id).await.pop().unwrap();
    assert_eq!(last.1, "tick");
}

#[actix_web::test]
async fn a_contest_locks_at_locks_at_after_its_server_restarted() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let mut body = contest_body();
    body["locks_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339());
    let id = open_contest(&app, &org, &body).await;
    app.handle.stop(true).await;
    app.state.registry.stop_all();
    let restarted = app.second_instance().await;
    wait_for_state(&restarted, &org, &id, "locked", Duration::from_secs(8)).await;
}

#[actix_web::test]
async fn an_overloaded_contest_answers_503_with_retry_after_and_loses_nothing() {
    let app = AppleApp::spawn_with(|vars| {
        vars.insert("APP__ACTORS__MAILBOX_BOUND".into(), "1".into());
    })
    .await;
    let org = organizer(&app).await;
    let mut body = contest_body();
    body["capacity"] = json!(1000);
    let id = open_contest(&app, &org, &body).await;
    let users = mint_users(&app, 150).await;
    let mut tasks = Vec::new();
    for (user, token) in users {
        let req = app.authed(Method::POST, &format!("/v1/contests/{id}/entries"), &token);
        tasks.push(actix_web::rt::spawn(async move {
            let res = req.send().await.unwrap();
            let retry = res.headers().contains_key("retry-after");
            (user, res.status().as_u16(), retry)
        }));
    }
    let mut accepted = Vec::new();
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            (user, 201, _) => accepted.push(user),
            (_, 503, true) => busy += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(busy > 0, "some callers were turned away");
    let stored: Vec<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM entry WHERE contest_id = $1::uuid AND status = 'confirmed'",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut stored = stored;
    stored.sort();
    accepted.sort();
    assert_eq!(
        stored, accepted,
        "exactly the acknowledged joins are stored"
    );
    assert_gapless(&app, &id).await;
}

#[actix_web::test]
async fn a_join_after_locks_at_is_refused_even_before_any_timer_fired() {
    // No sweeper in time, and the actor idles out: only the catch-up tick
    // that runs before each command can lock the contest.
    let app = AppleApp::spawn_with(|vars| {
        vars.insert("APP__ACTORS__SWEEP_INTERVAL_MS".into(), "600000".into());
        vars.insert("APP__ACTORS__IDLE_SECS".into(), "1".into());
    })
    .await;
    let org = organizer(&app).await;
    let ops = access(&app.sign_in_with_roles("ops", &["ops"]).await).to_owned();
    let mut body = contest_body();
    let locks_at = chrono::Utc::now() + chrono::Duration::seconds(4);
    body["locks_at"] = json!(locks_at.to_rfc3339());
    let id = open_contest(&app, &org, &body).await;
    // The idle actor stops (after 1 s) well before locks_at: no timer left.
    wait_until_idle(&app, &ops, &id).await;
    let until_locks = (locks_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_locks + Duration::from_millis(200)).await;
    let stored: String = sqlx::query_scalar("SELECT state FROM contest WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, "open", "no timer has fired");
    let users = mint_users(&app, 1).await;
    let res = post(&app, &format!("/v1/contests/{id}/entries"), &users[0].1).await;
    let body = assert_error(res, 409, "INVALID_TRANSITION").await;
    assert_eq!(body["error"]["details"]["state"], "locked");
    let kinds: Vec<String> = transitions(&app, &id)
        .await
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("tick"));
}

#[actix_web::test]
async fn a_failed_commit_fails_its_batch_with_503_and_loses_nothing() {
    let app = AppleApp::spawn().await;
    let org = organizer(&app).await;
    let id = open_contest(&app, &org, &contest_body()).await;
    let users = mint_users(&app, 4).await;
    assert_eq!(
        post(&app, &format!("/v1/contests/{id}/entries"), &users[0].1)
            .await
            .status(),
        201
    );
    // The database refuses the next commits of this contest.
    for sql in [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON contest_transition FOR EACH ROW EXECUTE FUNCTION refuse()",
    ] {
        sqlx::query(sql).execute(&app.db).await.unwrap();
    }
    let mut tasks = Vec::new();
    for (_, token) in &users[1..] {
        let req = app.authed(Method::POST, &format!("/v1/contests/{id}/entries"), token);
        tasks.push(actix_web::rt::spawn(async move {
            let res = req.send().await.unwrap();
            (
                res.status().as_u16(),
                res.headers().contains_key("retry-after"),
            )
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            (503, true),
            "every command of a failed batch is 503"
        );
    }
    let view = contest(&app, &id, &org).await;
    assert_eq!(
        (view["version"].as_i64(), view["seats_confirmed"].as_i64()),
        (Some(3), Some(1))
    );
    sqlx::query("DROP TRIGGER refuse ON contest_transition")
        .execute(&app.db)
        .await
        .unwrap();
    // The actor reloaded what Postgres holds: the next joins succeed.
    for (_, token) in &users[1..] {
        assert_eq!(
            post(&app, &format!("/v1/contests/{id}/entries"), token)
                .await
                .status(),
            201
        );
    }
    let view = contest(&app, &id, &org).await;
    assert_eq!(
        (view["version"].as_i64(), view["seats_confirmed"].as_i64()),
        (Some(6), Some(4))
    );
    assert_gapless(&app, &id).await;
}
