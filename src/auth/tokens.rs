//! The service's own access tokens: EdDSA (Ed25519) JWTs with `kid` and
//! `typ: at+jwt`. Several verification keys may be configured (rotation);
//! the first of `JWT_SIGNING_KEYS` signs.
//!
//! Verification pins the algorithm, requires `iss`, `aud`, `sub`, `iat`,
//! `exp`, `jti` (and our `sid`), checks `typ`, and maps `kid` only to
//! configured keys: `alg: none`, HMAC tokens made with a public key, Apple's
//! RS256 tokens and opaque refresh tokens are all refused.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, Settings};

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The internal user id.
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The sign-in session (refresh-token family) the token belongs to.
    pub sid: Uuid,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Expired,
    Invalid(&'static str),
}

pub struct TokenKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl TokenKeys {
    /// The keys of `JWT_SIGNING_KEYS`, or, in `local` and `test` without
    /// any, one throwaway key (tokens then die with the process).
    pub fn from_settings(settings: &Settings) -> Result<TokenKeys, ConfigError> {
        let mut specs: Vec<(String, [u8; 32])> = settings
            .signing_keys()?
            .into_iter()
            .map(|k| (k.kid, *k.seed.expose_secret()))
            .collect();
        if specs.is_empty() {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| ConfigError::Load(format!("no randomness for a signing key: {e}")))?;
            let kid = format!("throwaway-{}", &Uuid::new_v4().simple().to_string()[..8]);
            tracing::warn!(
                %kid,
                env = %settings.env,
                "JWT_SIGNING_KEYS unset: generated a throwaway signing key; tokens die with this process"
            );
            specs.push((kid, seed));
        }
        let bad = |why: String| ConfigError::Refused {
            setting: "JWT_SIGNING_KEYS".into(),
            reason: why,
        };
        let mut verifying = HashMap::new();
        let mut signing = None;
        for (i, (kid, seed)) in specs.iter().enumerate() {
            let key = SigningKey::from_bytes(seed);
            verifying.insert(
                kid.clone(),
                DecodingKey::from_ed_der(key.verifying_key().as_bytes()),
            );
            if i == 0 {
                let der = key
                    .to_pkcs8_der()
                    .map_err(|_| bad("a key could not be encoded".into()))?;
                signing = Some((kid.clone(), EncodingKey::from_ed_der(der.as_bytes())));
            }
        }
        let (signing_kid, signing) = signing.ok_or_else(|| bad("no key".into()))?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.auth.issuer]);
        validation.set_audience(&[&settings.auth.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;

        Ok(TokenKeys {
            signing_kid,
            signing,
            verifying,
            validation,
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
            ttl_secs: settings.auth.access_token_ttl_secs as i64,
        })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user` in session `sid`, issued at `now`
    /// (unix seconds).
    pub fn issue(
        &self,
        user: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.signing_kid.clone());
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            iat: now,
            exp: now + self.ttl_secs,
            jti: Uuid::new_v4(),
            sid,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing)
    }

    /// Verifies an access token (see the module comment for what is refused).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Invalid("malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenRejection::Invalid("algorithm"));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(TokenRejection::Invalid("typ"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenRejection::Invalid("kid"))?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRejection::Expired,
                ErrorKind::InvalidSignature => TokenRejection::Invalid("signature"),
                ErrorKind::InvalidAudience => TokenRejection::Invalid("audience"),
                ErrorKind::InvalidIssuer => TokenRejection::Invalid("issuer"),
                _ => TokenRejection::Invalid("claims"),
            },
        )?;
        let now = chrono::Utc::now().timestamp();
        if data.claims.iat > now + self.validation.leeway as i64 {
            return Err(TokenRejection::Invalid("iat"));
        }
        Ok(data.claims)
    }
}
