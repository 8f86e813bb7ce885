//! SQL: the pool, the embedded migrations, and the queries of each part.

pub mod contests;
pub mod sessions;
pub mod users;

use std::time::Duration;

use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseSettings;

/// The migrations under `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A pool that connects lazily, so the service starts (and answers
/// `/health/live`, and `503` on `/health/ready`) while the database is down.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    pool_of_size(settings, settings.max_connections)
}

/// The contest actors' own pool: their writes never queue behind the
/// requests' reads for a connection (a hot contest's commits must not wait
/// for the crowd that is waiting for them).
pub fn actor_pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    pool_of_size(settings, settings.actor_max_connections)
}

fn pool_of_size(settings: &DatabaseSettings, size: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = settings.url.expose_secret().parse()?;
    let options = options.application_name("contest-backend").options([(
        "statement_timeout",
        format!("{}ms", settings.statement_timeout_ms),
    )]);
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .min_connections(settings.min_connections.min(size))
        .acquire_timeout(settings.acquire_timeout())
        .idle_timeout(Some(Duration::from_secs(settings.idle_timeout_secs)))
        .max_lifetime(Some(Duration::from_secs(settings.max_lifetime_secs)))
        .connect_lazy_with(options))
}

/// Applies pending migrations over a connection of the migration role.
pub async fn migrate(url: &str) -> Result<(), sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("migrations pending: database at {applied}, this build needs {expected}")]
    MigrationsPending { applied: i64, expected: i64 },
}

impl NotReady {
    /// What a client may be told (no connection details).
    pub fn public_message(&self) -> &'static str {
        match self {
            NotReady::Database(_) | NotReady::Timeout(_) => "the database is unavailable",
            NotReady::MigrationsPending { .. } => "database migrations are pending",
        }
    }
}

/// The database answers within `timeout` and holds every migration of this
/// build.
pub async fn check_ready(pool: &PgPool, timeout: Duration) -> Result<(), NotReady> {
    let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let query = sqlx::query_scalar::<_, Option<i64>>(
        "SELECT max(version) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(pool);
    let applied = match tokio::time::timeout(timeout, query).await {
        Err(_) => return Err(NotReady::Timeout(timeout)),
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("42P01") => None,
        Ok(result) => result?,
    }
    .unwrap_or(0);
    if applied < expected {
        return Err(NotReady::MigrationsPending { applied, expected });
    }
    Ok(())
}
