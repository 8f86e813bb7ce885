//! Verifying Sign in with Apple identity tokens (security.md).
//!
//! The key set is fetched from `APPLE_JWKS_URL` and cached for
//! `apple.key_cache_ttl_secs`. An unknown `kid` triggers one refetch, at most
//! once per `apple.key_refetch_interval_secs` whatever callers send; fetches
//! are single-flight, and a failed fetch keeps the cached keys.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::config::AppleSettings;

pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// Clock skew allowed on `exp` and `iat`.
const SKEW_SECS: i64 = 60;
/// The oldest identity token accepted.
const MAX_AGE_SECS: i64 = 600;

/// Why an identity token was refused; the audit `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppleRejection {
    Malformed,
    WrongAlgorithm,
    MissingKid,
    UnknownKid,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    IssuedInFuture,
    TooOld,
    NonceMismatch,
    NonceMissing,
    MissingSub,
}

impl AppleRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            AppleRejection::Malformed => "malformed",
            AppleRejection::WrongAlgorithm => "wrong_alg",
            AppleRejection::MissingKid => "missing_kid",
            AppleRejection::UnknownKid => "unknown_kid",
            AppleRejection::BadSignature => "bad_signature",
            AppleRejection::WrongIssuer => "wrong_iss",
            AppleRejection::WrongAudience => "wrong_aud",
            AppleRejection::Expired => "expired",
            AppleRejection::IssuedInFuture => "iat_in_future",
            AppleRejection::TooOld => "too_old",
            AppleRejection::NonceMismatch => "nonce_mismatch",
            AppleRejection::NonceMissing => "nonce_missing",
            AppleRejection::MissingSub => "missing_sub",
        }
    }
}

/// What the service keeps of a verified identity token.
#[derive(Debug, Clone)]
pub struct AppleIdentity {
    pub issuer: String,
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub is_private_email: bool,
}

#[derive(Debug, Deserialize)]
struct AppleClaims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "bool_or_string")]
    email_verified: Option<bool>,
    #[serde(default, deserialize_with = "bool_or_string")]
    is_private_email: Option<bool>,
}

/// Apple sends `"true"`/`"false"` or a boolean, depending on the flow.
fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Str(String),
    }
    Ok(match Option::<Flag>::deserialize(d)? {
        None => None,
        Some(Flag::Bool(b)) => Some(b),
        Some(Flag::Str(s)) => Some(s.eq_ignore_ascii_case("true")),
    })
}

struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct FetchState {
    last_unknown_kid_refetch: Option<Instant>,
    last_failure: Option<Instant>,
}

/// Apple's key set, cached.
pub struct AppleKeys {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    refetch_interval: Duration,
    cache: RwLock<Cache>,
    fetch: tokio::sync::Mutex<FetchState>,
    /// Keys that never expire: the local development key in `local`/`test`.
    fixed: HashMap<String, DecodingKey>,
}

impl AppleKeys {
    pub fn new(
        settings: &AppleSettings,
        http: reqwest::Client,
        fixed: HashMap<String, DecodingKey>,
    ) -> Self {
        AppleKeys {
            url: settings.jwks_url.clone(),
            http,
            ttl: Duration::from_secs(settings.key_cache_ttl_secs),
            refetch_interval: Duration::from_secs(settings.key_refetch_interval_secs),
            cache: RwLock::new(Cache {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            fixed,
        }
    }

    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        match self.cache.read() {
            Ok(cache) => {
                let fresh = cache.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
                (cache.keys.get(kid).cloned(), fresh)
            }
            Err(_) => (None, false),
        }
    }

    /// The key for `kid`, fetching the set when it is stale or lacks `kid`
    /// (within the limits of the module comment).
    pub async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.fixed.get(kid) {
            return Some(key.clone());
        }
        if let (Some(key), true) = self.cached(kid) {
            return Some(key);
        }
        // Single flight: whoever waited here sees the result of the fetch
        // that was running.
        let mut state = self.fetch.lock().await;
        let (key, fresh) = self.cached(kid);
        let recent = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() < self.refetch_interval);
        let may_fetch = if !fresh {
            !recent(state.last_failure)
        } else {
            // Fresh set without this kid: one refetch per interval.
            key.is_none() && !recent(state.last_unknown_kid_refetch)
        };
        if !may_fetch {
            return key;
        }
        if fresh {
            state.last_unknown_kid_refetch = Some(Instant::now());
        }
        match self.fetch_set().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched Apple's key set");
                if let Ok(mut cache) = self.cache.write() {
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                }
                state.last_failure = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching Apple's key set failed; keeping the cached keys");
                state.last_failure = Some(Instant::now());
            }
        }
        self.cached(kid).0
    }

    async fn fetch_set(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, key);
            }
        }
        anyhow::ensure!(!keys.is_empty(), "the key set holds no usable key");
        Ok(keys)
    }
}

pub struct AppleVerifier {
    keys: AppleKeys,
    validation: Validation,
    require_nonce: bool,
}

impl AppleVerifier {
    pub fn new(settings: &AppleSettings, keys: AppleKeys) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[APPLE_ISSUER]);
        validation.set_audience(&settings.client_ids);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = SKEW_SECS as u64;
        AppleVerifier {
            keys,
            validation,
            require_nonce: settings.require_nonce,
        }
    }

    /// Verifies `token`; `nonce` is the raw nonce the app sent, if any.
    pub async fn verify(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<AppleIdentity, AppleRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppleRejection::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(AppleRejection::WrongAlgorithm);
        }
        let kid = header.kid.as_deref().ok_or(AppleRejection::MissingKid)?;
        let key = self.keys.key(kid).await.ok_or(AppleRejection::UnknownKid)?;
        let claims = jsonwebtoken::decode::<AppleClaims>(token, &key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AppleRejection::BadSignature,
                ErrorKind::InvalidIssuer => AppleRejection::WrongIssuer,
                ErrorKind::InvalidAudience => AppleRejection::WrongAudience,
                ErrorKind::ExpiredSignature => AppleRejection::Expired,
                ErrorKind::MissingRequiredClaim(c) if c == "sub" => AppleRejection::MissingSub,
                _ => AppleRejection::Malformed,
            })?
            .claims;

        let now = chrono::Utc::now().timestamp();
        if claims.iat > now + SKEW_SECS {
            return Err(AppleRejection::IssuedInFuture);
        }
        if now - claims.iat > MAX_AGE_SECS {
            return Err(AppleRejection::TooOld);
        }
        match (nonce, claims.nonce.as_deref()) {
            (Some(raw), Some(claimed)) => {
                let expected = hex::encode(sha2::Sha256::digest(raw.as_bytes()));
                if !bool::from(expected.as_bytes().ct_eq(claimed.as_bytes())) {
                    return Err(AppleRejection::NonceMismatch);
                }
            }
            (Some(_), None) => return Err(AppleRejection::NonceMismatch),
            (None, _) if self.require_nonce => return Err(AppleRejection::NonceMissing),
            (None, _) => {}
        }
        let sub = claims
            .sub
            .filter(|s| !s.trim().is_empty())
            .ok_or(AppleRejection::MissingSub)?;
        Ok(AppleIdentity {
            issuer: claims.iss,
            sub,
            email: claims.email,
            email_verified: claims.email_verified.unwrap_or(false),
            is_private_email: claims.is_private_email.unwrap_or(false),
        })
    }
}
