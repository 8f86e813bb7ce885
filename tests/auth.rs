//! Sign in with Apple, the service's own tokens, sessions, roles, rate
//! limits and the audit trail (security.md), against a local Apple key
//! server whose keys the tests generate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::apple::{AppleKey, apple_claims, hashed_nonce};
use common::{AppleApp, CLIENT_ID, TestApp, access, assert_error};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

const SEED_A: [u8; 32] = [11; 32];
const SEED_B: [u8; 32] = [22; 32];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An app signing with key "new" (seed B) and still verifying "old" (seed A).
async fn rotating_app() -> AppleApp {
    AppleApp::spawn_with(|vars| {
        vars.insert(
            "JWT_SIGNING_KEYS".into(),
            format!("new:{},old:{}", b64(&SEED_B), b64(&SEED_A)),
        );
    })
    .await
}

async fn sign_in_token(app: &AppleApp, token: &str) -> reqwest::Response {
    app.post_json("/v1/auth/apple", &json!({ "identity_token": token }))
        .await
}

async fn apple_rejected(app: &AppleApp, token: &str) {
    assert_error(sign_in_token(app, token).await, 401, "APPLE_TOKEN_INVALID").await;
}

fn claims_with(sub: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut claims = apple_claims(sub, CLIENT_ID);
    change(&mut claims);
    claims
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn audit_reasons(app: &TestApp, kind: &str) -> Vec<Option<String>> {
    sqlx::query_scalar("SELECT reason FROM audit_event WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

// ---------------------------------------------------------------- Apple tokens

#[actix_web::test]
async fn each_apple_token_rejection_is_401_and_audited_with_its_reason() {
    let app = AppleApp::spawn().await;
    let key = &app.key;
    let other = AppleKey::generate("apple-key-1"); // same kid, other key
    let cases: Vec<(&str, String)> = vec![
        ("wrong_alg", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(key.kid.clone());
            jsonwebtoken::encode(
                &h,
                &apple_claims("s", CLIENT_ID),
                &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap(),
            )
            .unwrap()
        }),
        ("bad_signature", other.sign(&apple_claims("s", CLIENT_ID))),
        (
            "wrong_iss",
            key.sign(&claims_with("s", |c| {
                c["iss"] = "https://evil.example".into()
            })),
        ),
        (
            "wrong_aud",
            key.sign(&claims_with("s", |c| c["aud"] = "com.other.app".into())),
        ),
        (
            "expired",
            key.sign(&claims_with("s", |c| {
                c["iat"] = (now() - 500).into();
                c["exp"] = (now() - 120).into();
            })),
        ),
        (
            "iat_in_future",
            key.sign(&claims_with("s", |c| {
                c["iat"] = (now() + 300).into();
                c["exp"] = (now() + 900).into();
            })),
        ),
        (
            "too_old",
            key.sign(&claims_with("s", |c| {
                c["iat"] = (now() - 660).into();
                c["exp"] = (now() + 600).into();
            })),
        ),
        (
            "missing_sub",
            key.sign(&claims_with("s", |c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
        ),
        ("malformed", "not.a.jwt".to_owned()),
    ];
    for (reason, token) in &cases {
        apple_rejected(&app, token).await;
        let reasons = audit_reasons(&app, "sign_in").await;
        assert_eq!(
            reasons.last().unwrap().as_deref(),
            Some(*reason),
            "audit reason for {reason}"
        );
    }
    let failures: i64 = app
        .count("SELECT count(*) FROM audit_event WHERE kind = 'sign_in' AND outcome = 'failure'")
        .await;
    assert_eq!(failures, cases.len() as i64);
    let users: i64 = app.count("SELECT count(*) FROM app_user").await;
    assert_eq!(users, 0, "no rejected token created a user");
}

#[actix_web::test]
async fn the_nonce_must_match_when_sent_and_when_required() {
    let app = AppleApp::spawn().await;
    let token = app.key.sign(&claims_with("n", |c| {
        c["nonce"] = hashed_nonce("raw-nonce-1").into();
    }));
    let res = app
        .post_json(
            "/v1/auth/apple",
            &json!({"identity_token": token, "nonce": "raw-nonce-2"}),
        )
        .await;
    assert_error(res, 401, "APPLE_TOKEN_INVALID").await;
    assert_eq!(
        audit_reasons(&app, "sign_in")
            .await
            .last()
            .unwrap()
            .as_deref(),
        Some("nonce_mismatch")
    );
    let res = app
        .post_json(
            "/v1/auth/apple",
            &json!({"identity_token": token, "nonce": "raw-nonce-1"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    // A nonce sent for a token that carries none is a mismatch too.
    let bare = app.key.sign(&apple_claims("n2", CLIENT_ID));
    let res = app
        .post_json(
            "/v1/auth/apple",
            &json!({"identity_token": bare, "nonce": "x"}),
        )
        .await;
    assert_error(res, 401, "APPLE_TOKEN_INVALID").await;

    let strict = AppleApp::spawn_with(|vars| {
        vars.insert("APP__APPLE__REQUIRE_NONCE".into(), "true".into());
    })
    .await;
    let bare = strict.key.sign(&apple_claims("n3", CLIENT_ID));
    apple_rejected(&strict, &bare).await;
    assert_eq!(
        audit_reasons(&strict, "sign_in")
            .await
            .last()
            .unwrap()
            .as_deref(),
        Some("nonce_missing")
    );
}

#[actix_web::test]
async fn email_verified_is_read_as_a_string_or_a_boolean() {
    let app = AppleApp::spawn().await;
    for (sub, value, expected) in [
        ("e1", json!("true"), true),
        ("e2", json!(true), true),
        ("e3", json!("false"), false),
        ("e4", json!(false), false),
    ] {
        let token = app.key.sign(&claims_with(sub, |c| {
            c["email_verified"] = value.clone();
            c["is_private_email"] = value.clone();
        }));
        let res = sign_in_token(&app, &token).await;
        assert_eq!(res.status(), 200, "{sub}");
        let (verified, private): (bool, bool) = sqlx::query_as(
            "SELECT email_verified, is_private_email FROM app_user WHERE apple_sub = $1",
        )
        .bind(sub)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!((verified, private), (expected, expected), "{sub}: {value}");
    }
}

#[actix_web::test]
async fn a_burst_of_unknown_kids_causes_at_most_one_refetch() {
    let app = AppleApp::spawn().await;
    app.sign_in("warm").await;
    assert_eq!(app.keys.fetches(), 1);
    let rogue = AppleKey::generate("rogue");
    let mut requests = Vec::new();
    for i in 0..20 {
        let token = rogue
            .with_kid(&format!("rogue-{i}"))
            .sign(&apple_claims("r", CLIENT_ID));
        let client = app.client.clone();
        let url = app.url("/v1/auth/apple");
        requests.push(actix_web::rt::spawn(async move {
            client
                .post(url)
                .json(&json!({ "identity_token": token }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for r in requests {
        assert_eq!(r.await.unwrap(), 401);
    }
    assert_eq!(app.keys.fetches(), 2, "one refetch for the whole burst");
    assert_eq!(
        audit_reasons(&app, "sign_in")
            .await
            .last()
            .unwrap()
            .as_deref(),
        Some("unknown_kid")
    );
}

#[actix_web::test]
async fn a_key_apple_adds_is_fetched_on_its_first_use() {
    let app = AppleApp::spawn().await;
    app.sign_in("warm").await;
    let added = AppleKey::generate("apple-key-2");
    app.keys.set_keys(&[&app.key, &added]);
    let res = sign_in_token(&app, &added.sign(&apple_claims("k2", CLIENT_ID))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.keys.fetches(), 2);
}

#[actix_web::test]
async fn a_failed_fetch_keeps_the_cached_keys() {
    let app = AppleApp::spawn_with(|vars| {
        vars.insert("APP__APPLE__KEY_CACHE_TTL_SECS".into(), "1".into());
    })
    .await;
    app.sign_in("before").await;
    app.keys.set_failing(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The set is stale and the fetch fails: the cached keys still verify.
    app.sign_in("during").await;
    assert_eq!(app.keys.fetches(), 2, "the stale set was refetched once");
    app.keys.set_failing(false);
}

// ---------------------------------------------------------------- users

#[actix_web::test]
async fn the_first_sign_in_creates_the_user_and_the_next_finds_it() {
    let app = AppleApp::spawn().await;
    let token = app.key.sign(&apple_claims("alice", CLIENT_ID));
    let res = app
        .post_json(
            "/v1/auth/apple",
            &json!({
                "identity_token": token,
                "authorization_code": "c0de",
                "full_name": {"given_name": "Alice", "family_name": "Liddell"}
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    assert_eq!(first["user"]["display_name"], "Alice Liddell");
    assert_eq!(first["user"]["roles"], json!(["user"]));
    let second = app.sign_in("alice").await;
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(second["user"]["display_name"], "Alice Liddell", "name kept");

    let me: Value = app
        .authed(Method::GET, "/v1/me", access(&second))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], first["user"]["id"]);
    assert_eq!(me["email"], "alice@privaterelay.appleid.com");
}

#[actix_web::test]
async fn a_deleted_accounts_sub_signs_up_as_a_new_user() {
    let app = AppleApp::spawn().await;
    let old = app.sign_in("bob").await;
    let old_id = old["user"]["id"].as_str().unwrap().to_owned();
    let res = app
        .authed(Method::DELETE, "/v1/me", access(&old))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    // Everything of the old account stops working at once.
    let res = app
        .authed(Method::GET, "/v1/me", access(&old))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHENTICATED").await;
    let res = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": old["refresh_token"]}),
        )
        .await;
    assert_error(res, 401, "REFRESH_TOKEN_INVALID").await;

    // Personal data is erased; the row stays as an anonymous placeholder.
    let (sub, email, name, deleted): (Option<String>, Option<String>, Option<String>, bool) =
        sqlx::query_as(
            "SELECT apple_sub, email, display_name, deleted_at IS NOT NULL FROM app_user WHERE id = $1::uuid",
        )
        .bind(&old_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((sub, email, name, deleted), (None, None, None, true));

    let new = app.sign_in("bob").await;
    assert_ne!(new["user"]["id"].as_str().unwrap(), old_id);
    let reasons = audit_reasons(&app, "account_deletion").await;
    assert_eq!(reasons.len(), 1);
}

// ---------------------------------------------------------------- refresh tokens

#[actix_web::test]
async fn refresh_rotates_and_a_spent_token_revokes_the_family() {
    let app = AppleApp::spawn().await;
    let s0 = app.sign_in("carol").await;
    let r0 = s0["refresh_token"].as_str().unwrap();

    let res = app
        .post_json("/v1/auth/refresh", &json!({"refresh_token": r0}))
        .await;
    assert_eq!(res.status(), 200);
    let s1: Value = res.json().await.unwrap();
    let r1 = s1["refresh_token"].as_str().unwrap();
    assert_ne!(r0, r1);
    assert_eq!(s1["user"]["id"], s0["user"]["id"]);
    let res = app
        .authed(Method::GET, "/v1/me", access(&s1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // r0 again: reuse detected, the family dies, r1 with it.
    let res = app
        .post_json("/v1/auth/refresh", &json!({"refresh_token": r0}))
        .await;
    assert_error(res, 401, "REFRESH_TOKEN_REUSED").await;
    let res = app
        .post_json("/v1/auth/refresh", &json!({"refresh_token": r1}))
        .await;
    assert_error(res, 401, "REFRESH_TOKEN_INVALID").await;
    let res = app
        .authed(Method::GET, "/v1/me", access(&s1))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHENTICATED").await;
    assert_eq!(audit_reasons(&app, "refresh_reuse").await.len(), 1);

    // Other sessions of the same user live on.
    let other = app.sign_in("carol").await;
    let res = app
        .authed(Method::GET, "/v1/me", access(&other))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn unknown_and_malformed_refresh_tokens_are_invalid() {
    let app = AppleApp::spawn().await;
    for token in ["", "short", &"A".repeat(43), &"é".repeat(43)] {
        let res = app
            .post_json("/v1/auth/refresh", &json!({"refresh_token": token}))
            .await;
        assert_error(res, 401, "REFRESH_TOKEN_INVALID").await;
    }
}

#[actix_web::test]
async fn logout_revokes_the_session() {
    let app = AppleApp::spawn().await;
    let s = app.sign_in("dave").await;
    let res = app
        .authed(Method::POST, "/v1/auth/logout", access(&s))
        .json(&json!({"refresh_token": s["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": s["refresh_token"]}),
        )
        .await;
    assert_error(res, 401, "REFRESH_TOKEN_INVALID").await;
    let res = app
        .authed(Method::GET, "/v1/me", access(&s))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "UNAUTHENTICATED").await;

    // Without a body, the access token's own session ends.
    let s = app.sign_in("dave").await;
    let res = app
        .authed(Method::POST, "/v1/auth/logout", access(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": s["refresh_token"]}),
        )
        .await;
    assert_error(res, 401, "REFRESH_TOKEN_INVALID").await;
    assert_eq!(audit_reasons(&app, "logout").await.len(), 2);
}

// ---------------------------------------------------------------- access tokens

fn ed_key(seed: &[u8; 32]) -> EncodingKey {
    let der = ed25519_dalek::SigningKey::from_bytes(seed)
        .to_pkcs8_der()
        .unwrap();
    EncodingKey::from_ed_der(der.as_bytes())
}

/// Claims like the service's, for `session`'s user and sid.
fn access_claims(session: &Value, app: &TestApp) -> Value {
    let token = access(session);
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(claims["aud"], app.settings.auth.audience.as_str());
    claims["jti"] = uuid::Uuid::new_v4().to_string().into();
    claims
}

fn sign_access(kid: &str, typ: &str, seed: &[u8; 32], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, &ed_key(seed)).unwrap()
}

async fn me_status(app: &TestApp, token: &str) -> reqwest::Response {
    app.authed(Method::GET, "/v1/me", token)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn access_token_forgeries_are_all_refused() {
    let app = rotating_app().await;
    let s = app.sign_in("eve").await;
    let claims = access_claims(&s, &app);
    // The genuine article, re-signed by the test with the same key, passes:
    // so each refusal below is for the one thing that changed.
    assert_eq!(
        me_status(&app, &sign_access("new", "at+jwt", &SEED_B, &claims))
            .await
            .status(),
        200
    );

    let b64u = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64u(&json!({"alg": "none", "typ": "at+jwt", "kid": "new"})),
        b64u(&claims)
    );
    let public = ed25519_dalek::SigningKey::from_bytes(&SEED_B).verifying_key();
    let hs256_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("new".into());
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(
            &h,
            &claims,
            &EncodingKey::from_secret(public.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = "another-service".into();
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = "someone-else".into();
    let mut no_jti = claims.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    let apple_token = app.key.sign(&apple_claims("eve", CLIENT_ID));

    let forgeries: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        ("HS256 signed with the public key", hs256_with_public_key),
        (
            "wrong aud",
            sign_access("new", "at+jwt", &SEED_B, &wrong_aud),
        ),
        (
            "wrong iss",
            sign_access("new", "at+jwt", &SEED_B, &wrong_iss),
        ),
        ("wrong typ", sign_access("new", "JWT", &SEED_B, &claims)),
        ("no jti", sign_access("new", "at+jwt", &SEED_B, &no_jti)),
        ("an Apple token", apple_token),
        (
            "a refresh token",
            s["refresh_token"].as_str().unwrap().to_owned(),
        ),
        (
            "an unknown kid",
            sign_access("other", "at+jwt", &SEED_B, &claims),
        ),
        (
            "a known kid with another key",
            sign_access("new", "at+jwt", &[33; 32], &claims),
        ),
        (
            "a kid with the other configured key",
            sign_access("old", "at+jwt", &SEED_B, &claims),
        ),
    ];
    for (what, token) in forgeries {
        let res = me_status(&app, &token).await;
        assert_eq!(res.status(), 401, "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{what}");
    }

    let mut expired = claims.clone();
    expired["iat"] = (now() - 1000).into();
    expired["exp"] = (now() - 100).into();
    let res = me_status(&app, &sign_access("new", "at+jwt", &SEED_B, &expired)).await;
    assert_error(res, 401, "TOKEN_EXPIRED").await;
}

#[actix_web::test]
async fn tokens_of_the_previous_key_verify_while_it_is_configured() {
    let app = rotating_app().await;
    let s = app.sign_in("frank").await;
    let header = jsonwebtoken::decode_header(access(&s)).unwrap();
    assert_eq!(header.kid.as_deref(), Some("new"), "the first key signs");
    let claims = access_claims(&s, &app);
    let by_old_key = sign_access("old", "at+jwt", &SEED_A, &claims);
    assert_eq!(me_status(&app, &by_old_key).await.status(), 200);

    // Once the old key is dropped from the configuration, its tokens die.
    let later = AppleApp::spawn_with(|vars| {
        vars.insert("JWT_SIGNING_KEYS".into(), format!("new:{}", b64(&SEED_B)));
    })
    .await;
    let s = later.sign_in("frank").await;
    let claims = access_claims(&s, &later);
    assert_eq!(
        me_status(&later, &sign_access("new", "at+jwt", &SEED_B, &claims))
            .await
            .status(),
        200
    );
    let res = me_status(&later, &sign_access("old", "at+jwt", &SEED_A, &claims)).await;
    assert_error(res, 401, "UNAUTHENTICATED").await;
}

// ---------------------------------------------------------------- roles

async fn set_roles(app: &TestApp, token: &str, user: &Value, roles: Value) -> reqwest::Response {
    let id = user["user"]["id"].as_str().unwrap();
    app.authed(Method::PUT, &format!("/v1/admin/users/{id}/roles"), token)
        .json(&json!({ "roles": roles }))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn an_admin_sets_roles_but_not_their_own() {
    let app = AppleApp::spawn().await;
    let admin = app.sign_in_with_roles("root", &["admin"]).await;
    let user = app.sign_in("gina").await;

    let res = set_roles(&app, access(&admin), &user, json!(["organizer", "ops"])).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["roles"], json!(["user", "organizer", "ops"]));
    let me: Value = me_status(&app, access(&user)).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["user", "organizer", "ops"]));

    let res = set_roles(&app, access(&admin), &admin, json!([])).await;
    assert_error(res, 403, "FORBIDDEN").await;
    let res = set_roles(&app, access(&user), &admin, json!([])).await;
    assert_error(res, 403, "FORBIDDEN").await;
    let res = set_roles(&app, access(&admin), &user, json!(["emperor"])).await;
    assert_error(res, 422, "VALIDATION_FAILED").await;
    let ghost = json!({"user": {"id": uuid::Uuid::new_v4().to_string()}});
    let res = set_roles(&app, access(&admin), &ghost, json!(["ops"])).await;
    assert_error(res, 404, "NOT_FOUND").await;

    // The role change is audited with who, whom, from and to; every 403 too.
    let (actor, subject, details): (Option<uuid::Uuid>, Option<uuid::Uuid>, Value) = sqlx::query_as(
        "SELECT actor_user_id, subject_user_id, details FROM audit_event WHERE kind = 'role_change'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        actor.unwrap().to_string(),
        admin["user"]["id"].as_str().unwrap()
    );
    assert_eq!(
        subject.unwrap().to_string(),
        user["user"]["id"].as_str().unwrap()
    );
    assert_eq!(details["from"], json!(["user"]));
    assert_eq!(details["to"], json!(["user", "organizer", "ops"]));
    let forbidden: i64 = app
        .count("SELECT count(*) FROM audit_event WHERE kind = 'forbidden'")
        .await;
    assert_eq!(forbidden, 2);
}

#[actix_web::test]
async fn a_demotion_takes_effect_on_the_very_next_request() {
    let app = AppleApp::spawn().await;
    let boss = app.sign_in_with_roles("boss", &["admin"]).await;
    let deputy = app.sign_in_with_roles("deputy", &["admin"]).await;
    let user = app.sign_in("henry").await;
    assert_eq!(
        set_roles(&app, access(&deputy), &user, json!(["ops"]))
            .await
            .status(),
        200
    );

    assert_eq!(
        set_roles(&app, access(&boss), &deputy, json!([]))
            .await
            .status(),
        200
    );
    // Same token, next request: no longer an admin.
    let res = set_roles(&app, access(&deputy), &user, json!([])).await;
    assert_error(res, 403, "FORBIDDEN").await;
}

// ---------------------------------------------------------------- rate limits

#[actix_web::test]
async fn the_auth_rate_limit_answers_429_then_lets_the_client_through() {
    let app = AppleApp::spawn_with(|vars| {
        vars.insert("APP__RATE_LIMIT__AUTH_PER_MINUTE".into(), "60".into());
        vars.insert("APP__RATE_LIMIT__AUTH_BURST".into(), "2".into());
    })
    .await;
    let bad = json!({"refresh_token": "A".repeat(43)});
    for _ in 0..2 {
        let res = app.post_json("/v1/auth/refresh", &bad).await;
        assert_eq!(res.status(), 401);
    }
    let res = app.post_json("/v1/auth/refresh", &bad).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_error(res, 429, "RATE_LIMITED").await;
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let res = app.post_json("/v1/auth/refresh", &bad).await;
    assert_eq!(res.status(), 401, "through again after Retry-After");
    assert!(!audit_reasons(&app, "rate_limited").await.is_empty());
}

#[actix_web::test]
async fn mutations_are_limited_per_user() {
    let app = AppleApp::spawn_with(|vars| {
        vars.insert("APP__RATE_LIMIT__MUTATIONS_PER_MINUTE".into(), "60".into());
        vars.insert("APP__RATE_LIMIT__MUTATIONS_BURST".into(), "3".into());
    })
    .await;
    let admin = app.sign_in_with_roles("adm", &["admin"]).await;
    let other_admin = app.sign_in_with_roles("adm2", &["admin"]).await;
    let user = app.sign_in("ivy").await;
    for _ in 0..3 {
        assert_eq!(
            set_roles(&app, access(&admin), &user, json!(["ops"]))
                .await
                .status(),
            200
        );
    }
    let res = set_roles(&app, access(&admin), &user, json!(["ops"])).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "RATE_LIMITED").await;
    // Reads are not limited, and other users have their own budget.
    assert_eq!(me_status(&app, access(&admin)).await.status(), 200);
    assert_eq!(
        set_roles(&app, access(&other_admin), &user, json!([]))
            .await
            .status(),
        200
    );
}

// ---------------------------------------------------------------- audit and secrecy

#[actix_web::test]
async fn no_token_or_secret_appears_in_any_log_line_or_audit_row() {
    let app = AppleApp::spawn().await;
    let identity = app.key.sign(&apple_claims("kim", CLIENT_ID));
    let s: Value = sign_in_token(&app, &identity).await.json().await.unwrap();
    let refreshed: Value = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": s["refresh_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    // Reuse, a bad Apple token, a forbidden call, a logout, a deletion.
    app.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": s["refresh_token"]}),
    )
    .await;
    let bad_identity = AppleKey::generate("apple-key-1").sign(&apple_claims("kim", CLIENT_ID));
    sign_in_token(&app, &bad_identity).await;
    let s2 = app.sign_in("kim").await;
    set_roles(&app, access(&s2), &s2, json!([])).await;
    app.authed(Method::POST, "/v1/auth/logout", access(&s2))
        .send()
        .await
        .unwrap();
    let s3 = app.sign_in("kim").await;
    app.authed(Method::DELETE, "/v1/me", access(&s3))
        .send()
        .await
        .unwrap();

    let secrets: Vec<String> = [
        identity,
        bad_identity,
        s["access_token"].as_str().unwrap().into(),
        s["refresh_token"].as_str().unwrap().into(),
        refreshed["access_token"].as_str().unwrap().into(),
        refreshed["refresh_token"].as_str().unwrap().into(),
        s2["access_token"].as_str().unwrap().into(),
        s2["refresh_token"].as_str().unwrap().into(),
        s3["access_token"].as_str().unwrap().into(),
    ]
    .into_iter()
    .collect();
    // Every JWT's signature, and every refresh token's first 16 characters,
    // are distinctive enough to find any leak of them.
    let needles: Vec<String> = secrets
        .iter()
        .map(|t| match t.rsplit_once('.') {
            Some((_, signature)) => signature.to_owned(),
            None => t[..16].to_owned(),
        })
        .collect();

    let logs = common::captured_logs();
    assert!(
        logs.contains("\"target\":\"security\""),
        "security events are logged"
    );
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', kind, outcome, reason, request_id, client_ip, details::text) FROM audit_event",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT kind FROM audit_event ORDER BY kind")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "account_deletion",
            "forbidden",
            "logout",
            "refresh_reuse",
            "sign_in"
        ]
    );
    for needle in &needles {
        assert!(
            !logs.contains(needle.as_str()),
            "a token leaked into the logs"
        );
        for row in &audit {
            assert!(
                !row.contains(needle.as_str()),
                "a token leaked into the audit: {row}"
            );
        }
    }
    // The request id of each audited request is recorded.
    assert!(
        audit
            .iter()
            .all(|row| row.split(' ').nth(3).is_some_and(|id| !id.is_empty()))
    );
}

// ---------------------------------------------------------------- the command line

fn binary() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_contest-backend"));
    cmd.env_clear()
        .env("APP_CONFIG_DIR", common::config_dir())
        .env("RUST_LOG", "warn");
    cmd
}

#[actix_web::test]
async fn a_dev_token_signs_in_and_grant_role_makes_an_admin() {
    let dir = std::env::temp_dir().join(format!("cb-dev-{}", uuid::Uuid::new_v4().simple()));
    let key_path = dir.join("dev-key.der");
    let app = TestApp::spawn_with(|vars| {
        vars.insert(
            "APP__APPLE__DEV_KEY_PATH".into(),
            key_path.display().to_string(),
        );
    })
    .await;
    let out = binary()
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &app.db_url)
        .env("APP__APPLE__DEV_KEY_PATH", &key_path)
        .args([
            "dev-token",
            "--sub",
            "someone",
            "--email",
            "someone@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let res = app
        .post_json("/v1/auth/apple", &json!({"identity_token": token}))
        .await;
    assert_eq!(res.status(), 200);
    let session: Value = res.json().await.unwrap();
    let me: Value = me_status(&app, access(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "someone@example.com");

    let out = binary()
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &app.db_url)
        .args(["grant-role", "--apple-sub", "someone", "--role", "admin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me: Value = me_status(&app, access(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["user", "admin"]));

    let out = binary()
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &app.db_url)
        .args(["grant-role", "--apple-sub", "nobody", "--role", "admin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dev_token_is_refused_outside_local_and_test() {
    let out = binary()
        .env("APP_ENV", "staging")
        .env("DATABASE_URL", "postgres://x@127.0.0.1/none")
        .env("STRIPE_SECRET_KEY", "sk_test_abcdefabcdef")
        .env("STRIPE_WEBHOOK_SECRETS", "whsec_0123456789abcdef")
        .env("APPLE_CLIENT_IDS", CLIENT_ID)
        .env("JWT_SIGNING_KEYS", format!("k:{}", b64(&SEED_A)))
        .args(["dev-token", "--sub", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dev-token is refused in staging"),
        "{stderr}"
    );
}
