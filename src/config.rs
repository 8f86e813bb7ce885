//! Configuration, layered as `operations.md` says (later wins):
//!
//! 1. `config/default.toml`
//! 2. `config/<APP_ENV>.toml`
//! 3. the well-known environment variables (`PORT`, `DATABASE_URL`, `STRIPE_*`,
//!    `APPLE_*`, `JWT_SIGNING_KEYS`, `METRICS_TOKEN`, …)
//! 4. `APP__SECTION__KEY` for everything else (`APP__DATABASE__MAX_CONNECTIONS=32`).
//!
//! Every struct rejects unknown keys, so a typo in a file or in an
//! `APP__…` variable stops the start instead of being ignored. Secrets live in
//! [`SecretString`], whose `Debug` prints `[REDACTED]`; the files in `config/`
//! hold none. [`Settings::validate`] refuses the misconfigurations listed in
//! `security.md` with a one-line reason that names the setting.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Apple's production key set; `production` refuses any other.
pub const APPLE_JWKS_URL: &str = "https://appleid.apple.com/auth/keys";
/// Stripe's API; tests point `STRIPE_API_BASE` at the local fake.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com/";
/// Length of an Ed25519 signing key (its seed), in bytes.
pub const SIGNING_KEY_LEN: usize = 32;

/// The deployment environment, from `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Local,
    Test,
    Staging,
    Production,
}

impl AppEnv {
    /// `local` and `test` may generate throwaway keys, run migrations at
    /// start-up and use `dev-token`; the others never do.
    pub fn is_development(self) -> bool {
        matches!(self, AppEnv::Local | AppEnv::Test)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Local => "local",
            AppEnv::Test => "test",
            AppEnv::Staging => "staging",
            AppEnv::Production => "production",
        }
    }
}

impl FromStr for AppEnv {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(AppEnv::Local),
            "test" => Ok(AppEnv::Test),
            "staging" => Ok(AppEnv::Staging),
            "production" => Ok(AppEnv::Production),
            other => Err(ConfigError::refused(
                "APP_ENV",
                format!("must be local, test, staging or production, not {other:?}"),
            )),
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the configuration was refused. The message is one line and names the
/// setting; it never contains a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration refused: {setting}: {reason}")]
    Refused { setting: String, reason: String },
    #[error("configuration could not be read: {0}")]
    Load(String),
}

impl ConfigError {
    fn refused(setting: &str, reason: impl Into<String>) -> Self {
        ConfigError::Refused {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }

    /// The setting that was refused, when there is one.
    pub fn setting(&self) -> Option<&str> {
        match self {
            ConfigError::Refused { setting, .. } => Some(setting),
            ConfigError::Load(_) => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Set from `APP_ENV`, never from a file.
    #[serde(skip, default = "default_env")]
    pub env: AppEnv,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub apple: AppleSettings,
    pub stripe: StripeSettings,
    pub metrics: MetricsSettings,
    pub rate_limit: RateLimitSettings,
    pub contests: ContestSettings,
    pub actors: ActorSettings,
    pub payments: PaymentSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContestSettings {
    pub currencies: Vec<String>,
    pub hold_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettings {
    /// How often the outbox worker looks for due tasks.
    pub worker_interval_ms: u64,
    /// How long a claimed task is left to its worker before another may
    /// retry it (a worker killed mid-call).
    pub worker_lease_secs: u64,
    /// After this many failed attempts a task is marked `failed`.
    pub max_attempts: u32,
    /// Tasks claimed per pass.
    pub worker_batch: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSettings {
    pub arbiters: usize,
    pub mailbox_bound: usize,
    /// The most commands one group commit carries.
    pub max_batch: usize,
    pub send_timeout_ms: u64,
    pub idle_secs: u64,
    pub sweep_interval_ms: u64,
}

fn default_env() -> AppEnv {
    AppEnv::Local
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// actix-web worker threads; `0` means one per core.
    pub workers: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// Largest request body accepted, in bytes (api.md: 64 KiB).
    pub body_limit_bytes: usize,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Send `Strict-Transport-Security`: set when TLS terminates in front of
    /// the service (it never serves TLS itself).
    pub hsts: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// The schema-changing role; `DATABASE_URL` when unset.
    pub migration_url: Option<SecretString>,
    pub max_connections: u32,
    /// The contest actors' separate pool.
    pub actor_max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub idle_timeout_secs: u64,
    pub max_lifetime_secs: u64,
    /// Server-side `statement_timeout` for every connection of the pool.
    pub statement_timeout_ms: u64,
    /// How long `/health/ready` waits for the database before answering 503.
    pub ready_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    pub fn ready_timeout(&self) -> Duration {
        Duration::from_millis(self.ready_timeout_ms)
    }

    pub fn migration_url(&self) -> &SecretString {
        self.migration_url.as_ref().unwrap_or(&self.url)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `kid:base64(32-byte Ed25519 seed)`, comma-separated; the first signs,
    /// all verify (rotation). Empty in `local`/`test` means "generate".
    pub jwt_signing_keys: Option<SecretString>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleSettings {
    /// Accepted `aud` values: the app's bundle ids.
    pub client_ids: Vec<String>,
    pub jwks_url: String,
    /// Refuse identity tokens whose request carries no nonce.
    pub require_nonce: bool,
    /// How long a fetched key set is used before it is fetched again.
    pub key_cache_ttl_secs: u64,
    /// An unknown `kid` refetches the set at most this often.
    pub key_refetch_interval_secs: u64,
    /// `local`/`test` only: the development key that `dev-token` signs with
    /// (created when absent). Refused elsewhere.
    pub dev_key_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per minute per client IP on `/v1/auth/*`.
    pub auth_per_minute: u32,
    pub auth_burst: u32,
    /// Mutations per minute per signed-in user.
    pub mutations_per_minute: u32,
    pub mutations_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    pub secret_key: Option<SecretString>,
    pub publishable_key: Option<String>,
    pub webhook_secrets: Vec<SecretString>,
    pub api_base: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Bearer token a Prometheus scraper may use instead of an ops account.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON in `staging`/`production`, text elsewhere.
    Auto,
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

/// One configured access-token key: its `kid` and its Ed25519 seed.
pub struct SigningKeySpec {
    pub kid: String,
    pub seed: secrecy::SecretBox<[u8; SIGNING_KEY_LEN]>,
}

impl fmt::Debug for SigningKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeySpec")
            .field("kid", &self.kid)
            .field("seed", &"[REDACTED]")
            .finish()
    }
}

/// The well-known variables of operations.md and the key each one sets.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("PORT", "server.port"),
    ("DATABASE_URL", "database.url"),
    ("MIGRATION_DATABASE_URL", "database.migration_url"),
    ("STRIPE_SECRET_KEY", "stripe.secret_key"),
    ("STRIPE_PUBLISHABLE_KEY", "stripe.publishable_key"),
    ("STRIPE_API_BASE", "stripe.api_base"),
    ("APPLE_JWKS_URL", "apple.jwks_url"),
    ("JWT_SIGNING_KEYS", "auth.jwt_signing_keys"),
    ("METRICS_TOKEN", "metrics.token"),
];

/// Comma-separated well-known variables.
const WELL_KNOWN_LISTS: &[(&str, &str)] = &[
    ("STRIPE_WEBHOOK_SECRETS", "stripe.webhook_secrets"),
    ("APPLE_CLIENT_IDS", "apple.client_ids"),
];

impl Settings {
    /// Reads the configuration from `APP_CONFIG_DIR` (default `config/`) and
    /// the process environment, then validates it.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let dir = vars
            .get("APP_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::load(&dir, &vars)
    }

    /// Reads the configuration from `dir` and the given variables (tests pass
    /// their own), then validates it.
    pub fn load(dir: &Path, vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env: AppEnv = vars
            .get("APP_ENV")
            .map(String::as_str)
            .unwrap_or("local")
            .parse()?;

        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(true))
            .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(false));

        let load = |e: config::ConfigError| ConfigError::Load(e.to_string());
        for (var, key) in WELL_KNOWN {
            if let Some(value) = vars.get(*var).filter(|v| !v.is_empty()) {
                builder = builder.set_override(*key, value.as_str()).map_err(load)?;
            }
        }
        for (var, key) in WELL_KNOWN_LISTS {
            if let Some(value) = vars.get(*var) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder = builder.set_override(*key, items).map_err(load)?;
            }
        }
        let app_vars: config::Map<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("APP__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(app_vars)),
        );

        let mut settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(load)?;
        settings.env = env;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses the misconfigurations of security.md ("Configuration and
    /// secrets"). Each refusal names the setting; none prints a secret.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let env = self.env;
        let strict = !env.is_development();

        if let Some(key) = &self.stripe.secret_key {
            let key = key.expose_secret();
            let is_test = key.starts_with("sk_test_") || key.starts_with("rk_test_");
            let is_live = key.starts_with("sk_live_") || key.starts_with("rk_live_");
            if env == AppEnv::Production && is_test {
                return Err(ConfigError::refused(
                    "STRIPE_SECRET_KEY",
                    "production must not use a Stripe test key",
                ));
            }
            if env != AppEnv::Production && is_live {
                return Err(ConfigError::refused(
                    "STRIPE_SECRET_KEY",
                    format!("{env} must not use a Stripe live key"),
                ));
            }
        } else if strict {
            return Err(ConfigError::refused(
                "STRIPE_SECRET_KEY",
                format!("{env} requires a Stripe secret key"),
            ));
        }
        if let Some(key) = &self.stripe.publishable_key {
            if env == AppEnv::Production && key.starts_with("pk_test_") {
                return Err(ConfigError::refused(
                    "STRIPE_PUBLISHABLE_KEY",
                    "production must not use a Stripe test key",
                ));
            }
            if env != AppEnv::Production && key.starts_with("pk_live_") {
                return Err(ConfigError::refused(
                    "STRIPE_PUBLISHABLE_KEY",
                    format!("{env} must not use a Stripe live key"),
                ));
            }
        }
        if strict && self.stripe.webhook_secrets.is_empty() {
            return Err(ConfigError::refused(
                "STRIPE_WEBHOOK_SECRETS",
                format!("{env} requires at least one webhook secret"),
            ));
        }
        if self
            .stripe
            .webhook_secrets
            .iter()
            .any(|s| s.expose_secret().len() < 16)
        {
            return Err(ConfigError::refused(
                "STRIPE_WEBHOOK_SECRETS",
                "every webhook secret must be at least 16 characters",
            ));
        }
        url::Url::parse(&self.stripe.api_base)
            .ok()
            .filter(|u| u.path().ends_with('/'))
            .ok_or_else(|| {
                ConfigError::refused("STRIPE_API_BASE", "must be an absolute URL ending in '/'")
            })?;

        match &self.auth.jwt_signing_keys {
            Some(_) => {
                self.signing_keys()?;
            }
            None if strict => {
                return Err(ConfigError::refused(
                    "JWT_SIGNING_KEYS",
                    format!("{env} requires configured signing keys"),
                ));
            }
            None => {}
        }
        if self.auth.access_token_ttl_secs == 0 || self.auth.access_token_ttl_secs > 3600 {
            return Err(ConfigError::refused(
                "auth.access_token_ttl_secs",
                "must be between 1 and 3600",
            ));
        }

        if env == AppEnv::Production && self.apple.jwks_url != APPLE_JWKS_URL {
            return Err(ConfigError::refused(
                "APPLE_JWKS_URL",
                format!("production must use Apple's key set ({APPLE_JWKS_URL})"),
            ));
        }
        url::Url::parse(&self.apple.jwks_url)
            .map_err(|_| ConfigError::refused("APPLE_JWKS_URL", "must be an absolute URL"))?;
        if !env.is_development() && self.apple.dev_key_path.is_some() {
            return Err(ConfigError::refused(
                "apple.dev_key_path",
                format!("{env} must not accept the development key"),
            ));
        }
        if strict && self.apple.client_ids.is_empty() {
            return Err(ConfigError::refused(
                "APPLE_CLIENT_IDS",
                format!("{env} requires at least one client id"),
            ));
        }

        if let Some(token) = &self.metrics.token
            && token.expose_secret().len() < 32
        {
            return Err(ConfigError::refused(
                "METRICS_TOKEN",
                "must be at least 32 characters",
            ));
        }

        let db_url = url::Url::parse(self.database.url.expose_secret())
            .ok()
            .filter(|u| matches!(u.scheme(), "postgres" | "postgresql"));
        if db_url.is_none() {
            return Err(ConfigError::refused(
                "DATABASE_URL",
                "must be a postgres:// URL",
            ));
        }
        if self.database.max_connections == 0
            || self.database.actor_max_connections == 0
            || self.database.min_connections > self.database.max_connections
        {
            return Err(ConfigError::refused(
                "database.max_connections",
                "must be positive and at least database.min_connections",
            ));
        }
        let limits = &self.rate_limit;
        if [
            limits.auth_per_minute,
            limits.auth_burst,
            limits.mutations_per_minute,
            limits.mutations_burst,
        ]
        .contains(&0)
        {
            return Err(ConfigError::refused(
                "rate_limit",
                "every rate and burst must be positive",
            ));
        }
        if self.contests.currencies.is_empty()
            || self
                .contests
                .currencies
                .iter()
                .any(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(ConfigError::refused(
                "contests.currencies",
                "one or more lowercase ISO 4217 codes",
            ));
        }
        if self.contests.hold_secs == 0 || self.actors.mailbox_bound == 0 {
            return Err(ConfigError::refused(
                "contests.hold_secs / actors.mailbox_bound",
                "must be positive",
            ));
        }
        if self.server.body_limit_bytes == 0 {
            return Err(ConfigError::refused(
                "server.body_limit_bytes",
                "must be positive",
            ));
        }
        Ok(())
    }

    /// The configured access-token keys, newest (signing) first.
    pub fn signing_keys(&self) -> Result<Vec<SigningKeySpec>, ConfigError> {
        let Some(raw) = &self.auth.jwt_signing_keys else {
            return Ok(Vec::new());
        };
        let bad = |reason: &str| ConfigError::refused("JWT_SIGNING_KEYS", reason);
        let mut keys: Vec<SigningKeySpec> = Vec::new();
        for item in raw.expose_secret().split(',').map(str::trim) {
            let (kid, b64) = item
                .split_once(':')
                .ok_or_else(|| bad("each key must be written kid:base64"))?;
            let kid = kid.trim();
            if kid.is_empty()
                || kid.len() > 64
                || !kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(bad("a kid must be 1 to 64 of [A-Za-z0-9._-]"));
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(bad("kids must be unique"));
            }
            let bytes =
                decode_base64(b64.trim()).ok_or_else(|| bad("a key is not valid base64"))?;
            let seed: [u8; SIGNING_KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                bad("each key must be a 32-byte Ed25519 seed (shorter keys are refused)")
            })?;
            keys.push(SigningKeySpec {
                kid: kid.to_owned(),
                seed: secrecy::SecretBox::new(Box::new(seed)),
            });
        }
        if keys.is_empty() {
            return Err(bad("no key given"));
        }
        Ok(keys)
    }
}

/// Accepts standard and URL-safe base64, padded or not.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(s).ok())
}
