//! Start-up refuses each misconfiguration of security.md, naming the setting
//! and never printing a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use contest_backend::config::{AppEnv, ConfigError, Settings};

const LIVE_KEY: &str = "sk_live_0123456789abcdefZq9xHidden";
const TEST_KEY: &str = "sk_test_0123456789abcdefZq9xHidden";

fn key_b64(len: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(vec![7u8; len])
}

/// A production configuration that passes every check.
fn production() -> HashMap<String, String> {
    HashMap::from([
        ("APP_ENV".into(), "production".into()),
        (
            "DATABASE_URL".into(),
            "postgres://svc:pw@db.internal:5432/contests".into(),
        ),
        ("STRIPE_SECRET_KEY".into(), LIVE_KEY.into()),
        ("STRIPE_PUBLISHABLE_KEY".into(), "pk_live_abc".into()),
        (
            "STRIPE_WEBHOOK_SECRETS".into(),
            "whsec_0123456789abcdef,whsec_fedcba9876543210".into(),
        ),
        ("APPLE_CLIENT_IDS".into(), "com.example.contest".into()),
        (
            "JWT_SIGNING_KEYS".into(),
            format!("2026-12:{},2026-06:{}", key_b64(32), key_b64(32)),
        ),
    ])
}

fn load(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
    Settings::load(&common::config_dir(), vars)
}

fn refused(vars: HashMap<String, String>, setting: &str) {
    match load(&vars) {
        Ok(_) => panic!("expected {setting} to be refused"),
        Err(e) => {
            assert_eq!(e.setting(), Some(setting), "{e}");
            let line = e.to_string();
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(line.contains(setting), "names the setting: {line}");
            assert!(!line.contains("Zq9xHidden"), "no secret in: {line}");
        }
    }
}

fn with(mut vars: HashMap<String, String>, key: &str, value: &str) -> HashMap<String, String> {
    vars.insert(key.into(), value.into());
    vars
}

fn without(mut vars: HashMap<String, String>, key: &str) -> HashMap<String, String> {
    vars.remove(key);
    vars
}

#[test]
fn a_complete_production_configuration_is_accepted() {
    let settings = load(&production()).unwrap();
    assert_eq!(settings.env, AppEnv::Production);
    assert_eq!(settings.stripe.webhook_secrets.len(), 2);
    assert_eq!(settings.apple.client_ids, vec!["com.example.contest"]);
    let keys = settings.signing_keys().unwrap();
    assert_eq!(keys[0].kid, "2026-12", "the first key signs");
    assert_eq!(keys.len(), 2);
}

#[test]
fn production_refuses_a_stripe_test_key() {
    refused(
        with(production(), "STRIPE_SECRET_KEY", TEST_KEY),
        "STRIPE_SECRET_KEY",
    );
}

#[test]
fn production_refuses_a_stripe_test_publishable_key() {
    refused(
        with(production(), "STRIPE_PUBLISHABLE_KEY", "pk_test_abc"),
        "STRIPE_PUBLISHABLE_KEY",
    );
}

#[test]
fn other_environments_refuse_a_stripe_live_key() {
    for env in ["local", "test", "staging"] {
        let vars = with(
            with(production(), "APP_ENV", env),
            "STRIPE_PUBLISHABLE_KEY",
            "pk_test_x",
        );
        refused(vars, "STRIPE_SECRET_KEY");
    }
}

#[test]
fn production_refuses_a_missing_stripe_key() {
    refused(
        without(production(), "STRIPE_SECRET_KEY"),
        "STRIPE_SECRET_KEY",
    );
}

#[test]
fn production_refuses_a_missing_webhook_secret() {
    refused(
        without(production(), "STRIPE_WEBHOOK_SECRETS"),
        "STRIPE_WEBHOOK_SECRETS",
    );
    refused(
        with(production(), "STRIPE_WEBHOOK_SECRETS", " , "),
        "STRIPE_WEBHOOK_SECRETS",
    );
}

#[test]
fn a_short_webhook_secret_is_refused() {
    refused(
        with(production(), "STRIPE_WEBHOOK_SECRETS", "whsec_short"),
        "STRIPE_WEBHOOK_SECRETS",
    );
}

#[test]
fn production_refuses_missing_signing_keys() {
    refused(
        without(production(), "JWT_SIGNING_KEYS"),
        "JWT_SIGNING_KEYS",
    );
}

#[test]
fn a_signing_key_shorter_than_required_is_refused_everywhere() {
    let short = format!("k1:{}", key_b64(16));
    refused(
        with(production(), "JWT_SIGNING_KEYS", &short),
        "JWT_SIGNING_KEYS",
    );
    for env in ["local", "test", "staging"] {
        let mut vars = with(production(), "APP_ENV", env);
        vars.insert("STRIPE_SECRET_KEY".into(), TEST_KEY.into());
        vars.insert("STRIPE_PUBLISHABLE_KEY".into(), "pk_test_x".into());
        vars.insert("JWT_SIGNING_KEYS".into(), short.clone());
        refused(vars, "JWT_SIGNING_KEYS");
    }
}

#[test]
fn malformed_signing_keys_are_refused() {
    for bad in [
        "no-colon".to_owned(),
        format!(":{}", key_b64(32)),
        "k1:not base64!".to_owned(),
        format!("k1:{},k1:{}", key_b64(32), key_b64(32)),
        format!("bad kid:{}", key_b64(32)),
    ] {
        refused(
            with(production(), "JWT_SIGNING_KEYS", &bad),
            "JWT_SIGNING_KEYS",
        );
    }
}

#[test]
fn production_refuses_a_key_set_url_other_than_apples() {
    refused(
        with(production(), "APPLE_JWKS_URL", "http://127.0.0.1:9999/keys"),
        "APPLE_JWKS_URL",
    );
}

#[test]
fn production_refuses_an_empty_client_id_list() {
    refused(
        without(production(), "APPLE_CLIENT_IDS"),
        "APPLE_CLIENT_IDS",
    );
}

#[test]
fn an_unknown_environment_is_refused() {
    refused(with(production(), "APP_ENV", "prod"), "APP_ENV");
}

#[test]
fn a_database_url_that_is_not_postgres_is_refused() {
    refused(
        with(production(), "DATABASE_URL", "mysql://db/contests"),
        "DATABASE_URL",
    );
}

#[test]
fn a_short_metrics_token_is_refused() {
    refused(
        with(production(), "METRICS_TOKEN", "short"),
        "METRICS_TOKEN",
    );
}

#[test]
fn an_unknown_key_is_refused_not_ignored() {
    let err = load(&with(production(), "APP__SERVER__PROT", "80")).unwrap_err();
    assert!(err.to_string().contains("prot"), "{err}");
    let err = load(&with(production(), "APP__SERVR__PORT", "80")).unwrap_err();
    assert!(err.to_string().contains("servr"), "{err}");
}

#[test]
fn layers_apply_in_order() {
    let vars = with(
        with(production(), "PORT", "9123"),
        "APP__DATABASE__MAX_CONNECTIONS",
        "7",
    );
    let settings = load(&vars).unwrap();
    assert_eq!(settings.server.port, 9123, "PORT wins over the files");
    assert_eq!(
        settings.database.max_connections, 7,
        "APP__ wins over the files"
    );
    // production.toml overrides default.toml (32 vs 16) when no variable is set.
    assert_eq!(load(&production()).unwrap().database.max_connections, 32);
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let settings = load(&production()).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains("Zq9xHidden"), "{debug}");
    assert!(!debug.contains("pw@"), "{debug}");
    assert!(!debug.contains("whsec_0123"), "{debug}");
    assert!(!debug.contains(&key_b64(32)), "{debug}");
}

#[test]
fn the_binary_refuses_to_start_and_names_the_setting() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_contest-backend"));
    cmd.env_clear()
        .env("APP_CONFIG_DIR", common::config_dir())
        .arg("serve");
    for (k, v) in with(production(), "STRIPE_SECRET_KEY", TEST_KEY) {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STRIPE_SECRET_KEY"), "{stderr}");
    assert!(!stderr.contains(TEST_KEY), "no secret: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}
