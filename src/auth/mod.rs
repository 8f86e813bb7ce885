//! Authentication and authorization: Sign in with Apple, the service's own
//! tokens, sessions (refresh-token families), roles, rate limits, and the
//! bearer-token extractor every protected route uses.

pub mod access;
pub mod apple;
pub mod dev_key;
pub mod extract;
pub mod ratelimit;
pub mod refresh;
pub mod roles;
pub mod sessions;
pub mod tokens;

use std::collections::HashMap;

use anyhow::Context as _;

use crate::config::Settings;
use apple::{AppleKeys, AppleVerifier};
use ratelimit::RateLimits;
use tokens::TokenKeys;

/// Everything authentication needs, built once at start-up.
pub struct Auth {
    pub tokens: TokenKeys,
    pub apple: AppleVerifier,
    pub limits: RateLimits,
    pub refresh_ttl: chrono::Duration,
}

impl Auth {
    pub fn from_settings(settings: &Settings, http: reqwest::Client) -> anyhow::Result<Auth> {
        let tokens = TokenKeys::from_settings(settings)?;
        let mut fixed = HashMap::new();
        if let Some(path) = &settings.apple.dev_key_path {
            // `validate` refuses a dev key outside `local` and `test`.
            let key = dev_key::DevKey::load_or_create(path)
                .with_context(|| format!("loading the development key {}", path.display()))?;
            tracing::warn!(
                env = %settings.env,
                "accepting identity tokens signed by the local development key (dev-token)"
            );
            fixed.insert(dev_key::DEV_KID.to_owned(), key.decoding_key());
        }
        let keys = AppleKeys::new(&settings.apple, http, fixed);
        Ok(Auth {
            tokens,
            apple: AppleVerifier::new(&settings.apple, keys),
            limits: RateLimits::new(&settings.rate_limit),
            refresh_ttl: chrono::Duration::days(settings.auth.refresh_token_ttl_days as i64),
        })
    }
}

/// Installs `ring` as rustls' process-wide crypto provider (the HTTP
/// client is built without one, so that aws-lc is never compiled).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
