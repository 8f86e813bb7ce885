//! The fake Apple of `common::apple`: its keys sign tokens that verify with
//! the JWK set its loopback server serves, and the server counts fetches,
//! fails on demand and rotates keys. No database needed.

// The helpers below are not #[test] fns, which clippy.toml exempts.
#![allow(clippy::unwrap_used)]

mod common;

use common::apple::{AppleKey, KeyServer, apple_claims, hashed_nonce};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

const BUNDLE_ID: &str = "com.example.contest";

fn apple_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[BUNDLE_ID]);
    validation.set_issuer(&["https://appleid.apple.com"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation
}

/// A plain-HTTP client; reqwest is built without a rustls provider, so one
/// must be installed before any client is built.
fn client() -> reqwest::Client {
    contest_backend::auth::install_crypto_provider();
    reqwest::Client::new()
}

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

async fn fetch_jwks(server: &KeyServer) -> JwkSet {
    let res = get(&server.url()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

fn kids(set: &JwkSet) -> Vec<&str> {
    set.keys
        .iter()
        .map(|k| k.common.key_id.as_deref().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_signed_token_verifies_with_the_jwk_fetched_over_http() {
    let key = AppleKey::generate("kid-1");
    let server = KeyServer::start(&[&key]).await;
    assert_eq!(server.fetches(), 0);

    let token = key.sign(&apple_claims("001234.abcd", BUNDLE_ID));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some("kid-1"));
    assert_eq!(header.typ.as_deref(), Some("JWT"));

    let set = fetch_jwks(&server).await;
    assert_eq!(server.fetches(), 1);
    let jwk = set.find("kid-1").unwrap();
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &apple_validation(),
    )
    .unwrap();
    let claims = decoded.claims;
    assert_eq!(claims["sub"], "001234.abcd");
    assert_eq!(claims["aud"], BUNDLE_ID);
    assert_eq!(claims["email"], "001234.abcd@privaterelay.appleid.com");
    assert_eq!(claims["email_verified"], "true");
    assert_eq!(claims["is_private_email"], "true");
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap() + 600
    );

    // The raw JWK carries exactly Apple's fields.
    let raw: Value = get(&server.url()).await.json().await.unwrap();
    assert_eq!(raw["keys"][0], key.jwk());
    let jwk = raw["keys"][0].as_object().unwrap();
    let mut fields: Vec<&str> = jwk.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(server.fetches(), 2);
}

#[actix_web::test]
async fn another_key_or_another_audience_does_not_verify() {
    let key = AppleKey::generate("kid-1");
    let impostor = AppleKey::generate("kid-1");
    let server = KeyServer::start(&[&key]).await;
    let set = fetch_jwks(&server).await;
    let decoding = DecodingKey::from_jwk(set.find("kid-1").unwrap()).unwrap();

    let forged = impostor.sign(&apple_claims("001234.abcd", BUNDLE_ID));
    assert!(jsonwebtoken::decode::<Value>(&forged, &decoding, &apple_validation()).is_err());

    let other_app = key.sign(&apple_claims("001234.abcd", "com.example.other"));
    assert!(jsonwebtoken::decode::<Value>(&other_app, &decoding, &apple_validation()).is_err());
}

#[actix_web::test]
async fn failing_answers_503_and_still_counts() {
    let key = AppleKey::generate("kid-1");
    let server = KeyServer::start(&[&key]).await;

    server.set_failing(true);
    let res = get(&server.url()).await;
    assert_eq!(res.status(), 503);
    assert_eq!(server.fetches(), 1);

    server.set_failing(false);
    let set = fetch_jwks(&server).await;
    assert_eq!(kids(&set), ["kid-1"]);
    assert_eq!(server.fetches(), 2);

    // Only GET /auth/keys counts.
    let other = server.url().replace("/auth/keys", "/auth/token");
    assert_eq!(get(&other).await.status(), 404);
    let post = client().post(server.url()).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(server.fetches(), 2);
}

#[actix_web::test]
async fn set_keys_rotates_the_served_set() {
    let old = AppleKey::generate("old");
    let new = AppleKey::generate("new");
    let server = KeyServer::start(&[&old]).await;
    assert_eq!(kids(&fetch_jwks(&server).await), ["old"]);

    server.set_keys(&[&new, &old]);
    let set = fetch_jwks(&server).await;
    assert_eq!(kids(&set), ["new", "old"]);
    let token = new.sign(&apple_claims("001234.abcd", BUNDLE_ID));
    let decoding = DecodingKey::from_jwk(set.find("new").unwrap()).unwrap();
    jsonwebtoken::decode::<Value>(&token, &decoding, &apple_validation()).unwrap();

    server.set_keys(&[]);
    assert!(fetch_jwks(&server).await.keys.is_empty());
    assert_eq!(server.fetches(), 3);
}

#[actix_web::test]
async fn custom_headers_and_the_public_der() {
    let key = AppleKey::generate("kid-1");
    let claims = apple_claims("001234.abcd", BUNDLE_ID);

    let no_kid = key.sign_with_header(Header::new(Algorithm::RS256), &claims);
    assert_eq!(jsonwebtoken::decode_header(&no_kid).unwrap().kid, None);

    // The PKCS#1 public DER is the key a verifier holds...
    let public = DecodingKey::from_rsa_der(&key.public_der_pkcs1());
    jsonwebtoken::decode::<Value>(&no_kid, &public, &apple_validation()).unwrap();

    // ...and an HS256 token keyed with it is the classic confusion forgery,
    // which an RS256-only validation refuses.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("kid-1".to_owned());
    let forged = jsonwebtoken::encode(
        &hs,
        &claims,
        &EncodingKey::from_secret(&key.public_der_pkcs1()).unwrap(),
    )
    .unwrap();
    assert!(jsonwebtoken::decode::<Value>(&forged, &public, &apple_validation()).is_err());
}

#[test]
fn hashed_nonce_is_lowercase_hex_sha256() {
    assert_eq!(
        hashed_nonce("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
