//! Building and running the application. [`Application::build`] is the one
//! function that both `main` and the tests use; it binds the listener (port
//! `0` in tests) and reports the port it got.

use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};
use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use sqlx::PgPool;

use std::sync::Arc;

use crate::actors::{Registry, sweeper};
use crate::audit::{self, AuditEvent, AuditKind, Outcome};
use crate::auth::{self, Auth, ratelimit::Limited};
use crate::config::Settings;
use crate::error::{ApiError, ErrorCode};
use crate::http::{self, openapi::ApiDocs};
use crate::metrics::Metrics;
use crate::payments::PaymentGateway;
use crate::store;

/// What every handler can reach.
pub struct AppState {
    pub settings: Settings,
    pub db: PgPool,
    pub auth: Auth,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub payments: Arc<PaymentGateway>,
    /// Contest id → organizer id (immutable), for the access check of joins.
    pub organizers: dashmap::DashMap<uuid::Uuid, uuid::Uuid>,
}

impl AppState {
    /// The caller's address (see [`http::client_ip`]).
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        http::client_ip::client_ip(req, &self.settings.server.trusted_proxies)
    }

    /// `429 RATE_LIMITED` with `Retry-After`, audited once per key and minute.
    pub async fn rate_limited(
        &self,
        req: &actix_web::HttpRequest,
        limited: Limited,
        user: Option<uuid::Uuid>,
    ) -> ApiError {
        if limited.audit {
            let mut event = AuditEvent::new(AuditKind::RateLimited, Outcome::Failure)
                .client_ip(self.client_ip(req))
                .details(serde_json::json!({ "route": req.match_pattern() }));
            if let Some(user) = user {
                event = event.actor(user);
            }
            audit::record_best_effort(&self.db, event).await;
        }
        ApiError::new(ErrorCode::RateLimited)
            .with_retry_after(limited.retry_after.as_secs_f64().ceil() as u64)
    }

    /// Checks the per-IP limit of `/v1/auth/*`.
    pub async fn check_auth_rate(&self, req: &actix_web::HttpRequest) -> Result<(), ApiError> {
        let Some(ip) = self.client_ip(req) else {
            return Ok(());
        };
        match self.auth.limits.check_auth(ip) {
            Ok(()) => Ok(()),
            Err(limited) => Err(self.rate_limited(req, limited, None).await),
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects (lazily) to the database, applies migrations in `local` and
    /// `test`, binds the listener and prepares the server. The server runs
    /// when [`Application::run_until_stopped`] is awaited.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.env.is_development() {
            tracing::info!(env = %settings.env, "applying pending migrations");
            store::migrate(settings.database.migration_url().expose_secret())
                .await
                .context("applying migrations (is PostgreSQL running and DATABASE_URL right?)")?;
        }
        let db = store::pool(&settings.database).context("DATABASE_URL is not a valid URL")?;
        auth::install_crypto_provider();
        let http_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let auth = Auth::from_settings(&settings, http_client)?;

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let docs = web::Data::new(
            ApiDocs::new(&http::openapi_document()).context("rendering the OpenAPI document")?,
        );
        let metrics = Arc::new(Metrics::new());
        let actor_db =
            store::actor_pool(&settings.database).context("DATABASE_URL is not a valid URL")?;
        let registry = Registry::new(&settings, actor_db, metrics.clone());
        sweeper::spawn(
            registry.clone(),
            db.clone(),
            Duration::from_millis(settings.actors.sweep_interval_ms),
        );
        let payments = Arc::new(
            PaymentGateway::from_settings(&settings).context("configuring the Stripe client")?,
        );
        crate::payments::worker::spawn(
            db.clone(),
            registry.clone(),
            payments.clone(),
            metrics.clone(),
            settings.payments.clone(),
        );
        let state = web::Data::new(AppState {
            settings,
            db,
            auth,
            registry,
            metrics,
            payments,
            organizers: dashmap::DashMap::new(),
        });
        spawn_housekeeping(state.clone());

        let server_state = state.clone();
        // `bind` (not a std listener) so that the listen queue is actix's
        // backlog, not std's fixed 128.
        let mut server = HttpServer::new(move || http::app(server_state.clone(), docs.clone()))
            .backlog(2048)
            .shutdown_timeout(state.settings.server.shutdown_timeout_secs)
            .client_request_timeout(Duration::from_secs(10))
            .client_disconnect_timeout(Duration::from_secs(2));
        if state.settings.server.workers > 0 {
            server = server.workers(state.settings.server.workers);
        }
        let server = server
            .bind(&address)
            .with_context(|| format!("binding {address}"))?;
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .context("the server bound no address")?;
        let server = server.run();
        tracing::info!(%address, port, env = %state.settings.env, "listening");
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server gracefully (tests use it; `main` relies
    /// on SIGTERM / Ctrl-C, which actix-web turns into the same stop).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until a graceful stop: stop accepting, finish in-flight
    /// requests (up to `server.shutdown_timeout_secs`), then return.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        self.state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Periodic upkeep of in-memory state (rate-limiter buckets).
fn spawn_housekeeping(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            state.auth.limits.shrink();
        }
    });
}
