//! The test harness: every test gets the real application on port 0 against
//! a fresh PostgreSQL database of its own, dropped when the test ends.
//!
//! `TEST_DATABASE_URL` names a role that may create databases (the test
//! command sets it); logs go to a sink unless `TEST_LOG=1`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, Once};

use actix_web::dev::ServerHandle;
use contest_backend::config::{AppEnv, LogFormat, LogSettings, Settings};
use contest_backend::startup::Application;
use sqlx::Connection as _;

pub mod apple;
pub mod child;
pub mod proxy;
pub mod stripe;

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `admin_url` with its database replaced by `name`.
pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// The variables a test environment starts from.
/// A fixed signing key, so that several instances accept each other's
/// tokens (tests of key handling set their own).
pub const TEST_SIGNING_KEYS: &str = "test-key:KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

pub fn test_vars(database_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("APP_ENV".to_owned(), "test".to_owned()),
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("JWT_SIGNING_KEYS".to_owned(), TEST_SIGNING_KEYS.to_owned()),
    ])
}

/// Every log line of this test process, at `info` and above, so that tests
/// can check what was (not) logged. Shown on stdout too with `TEST_LOG=1`.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap().extend_from_slice(buf);
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            std::io::stdout().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let log = LogSettings {
            format: LogFormat::Json,
            filter: "info,sqlx=warn".to_owned(),
        };
        contest_backend::telemetry::init(AppEnv::Test, &log, || Capture);
    });
}

/// The log lines captured so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap()).into_owned()
}

/// A database of the test's own, dropped (with its connections) on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("cbt_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = database_url(&name);
        TestDb { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread
        // of its own and wait for it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub handle: ServerHandle,
    pub db: sqlx::PgPool,
    pub state: actix_web::web::Data<contest_backend::startup::AppState>,
    pub settings: Settings,
    pub db_url: String,
    /// The variables the app was started with.
    pub vars: HashMap<String, String>,
    // Last: the database is dropped after the server stopped using it (a
    // second instance on the same database owns none).
    pub test_db: Option<TestDb>,
}

impl TestApp {
    /// The application with the test configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// The application after `customize` changed the environment variables.
    pub async fn spawn_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
        init_logs();
        let test_db = TestDb::create().await;
        let url = test_db.url.clone();
        Self::spawn_on(&url, Some(test_db), customize).await
    }

    /// Another instance of the app on this app's database, started with
    /// the same variables (so the same signing keys: tokens work on both).
    pub async fn second_instance(&self) -> TestApp {
        let vars = self.vars.clone();
        Self::spawn_on(&self.db_url, None, move |v| *v = vars).await
    }

    async fn spawn_on(
        url: &str,
        test_db: Option<TestDb>,
        customize: impl FnOnce(&mut HashMap<String, String>),
    ) -> TestApp {
        init_logs();
        let mut vars = test_vars(url);
        customize(&mut vars);
        let settings = Settings::load(&config_dir(), &vars).expect("test settings are valid");
        let started_with = vars.clone();
        let app = Application::build(settings.clone())
            .await
            .expect("the application builds");
        let port = app.port();
        let handle = app.handle();
        let state = app.state();
        let db = state.db.clone();
        actix_web::rt::spawn(app.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            handle,
            db,
            state,
            settings,
            db_url: url.to_owned(),
            vars: started_with,
            test_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The single number a `SELECT count(*) …` query answers.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db).await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts the api.md error schema and returns the body.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status of {}", res.url());
    let request_id = res
        .headers()
        .get("x-request-id")
        .expect("every response has x-request-id")
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = res.json().await.expect("error body is JSON");
    let error = &body["error"];
    assert_eq!(error["code"], code, "body: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message missing: {body}"
    );
    assert_eq!(error["request_id"], request_id.as_str(), "body: {body}");
    if let Some(details) = error.get("details") {
        assert!(details.is_object(), "details is an object: {body}");
    }
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["error"], "only `error` at the top: {body}");
    body
}

/// The bundle id the test configuration accepts.
pub const CLIENT_ID: &str = "com.example.contest.dev";

/// An app whose Apple key set is served by a local [`apple::KeyServer`].
pub struct AppleApp {
    pub app: TestApp,
    pub key: apple::AppleKey,
    pub keys: apple::KeyServer,
}

impl std::ops::Deref for AppleApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl AppleApp {
    pub async fn spawn() -> AppleApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> AppleApp {
        let key = apple::AppleKey::generate("apple-key-1");
        let keys = apple::KeyServer::start(&[&key]).await;
        let url = keys.url();
        let app = TestApp::spawn_with(|vars| {
            vars.insert("APPLE_JWKS_URL".into(), url);
            customize(vars);
        })
        .await;
        AppleApp { app, key, keys }
    }

    /// `POST /v1/auth/apple` with a token Apple would issue for `sub`.
    pub async fn sign_in_response(&self, sub: &str) -> reqwest::Response {
        let token = self.key.sign(&apple::apple_claims(sub, CLIENT_ID));
        self.post_json(
            "/v1/auth/apple",
            &serde_json::json!({ "identity_token": token }),
        )
        .await
    }

    /// Signs `sub` in and returns the token response.
    pub async fn sign_in(&self, sub: &str) -> serde_json::Value {
        let res = self.sign_in_response(sub).await;
        assert_eq!(res.status(), 200, "sign-in of {sub}");
        res.json().await.unwrap()
    }

    /// Signs `sub` in and grants `roles` directly in the database.
    pub async fn sign_in_with_roles(&self, sub: &str, roles: &[&str]) -> serde_json::Value {
        let session = self.sign_in(sub).await;
        let id = uuid::Uuid::parse_str(session["user"]["id"].as_str().unwrap()).unwrap();
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        sqlx::query("UPDATE app_user SET roles = $2 WHERE id = $1")
            .bind(id)
            .bind(&roles)
            .execute(&self.db)
            .await
            .unwrap();
        session
    }
}

impl TestApp {
    /// A request with `Authorization: Bearer <token>`.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }
}

/// The access token of a token response.
pub fn access(session: &serde_json::Value) -> &str {
    session["access_token"].as_str().unwrap()
}

/// A contest body valid for creation: free, capacity 10, locking in an hour.
pub fn contest_body() -> serde_json::Value {
    serde_json::json!({
        "title": "Friday quiz",
        "description": "Ten questions",
        "entry_fee_cents": 0,
        "capacity": 10,
        "locks_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
    })
}

/// Creates a contest with `body` as `token` and returns its view.
pub async fn create_contest(
    app: &TestApp,
    token: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let res = app
        .authed(reqwest::Method::POST, "/v1/contests", token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create contest");
    res.json().await.unwrap()
}

/// Creates and opens a contest; returns its id.
pub async fn open_contest(app: &TestApp, token: &str, body: &serde_json::Value) -> String {
    let contest = create_contest(app, token, body).await;
    let id = contest["id"].as_str().unwrap().to_owned();
    let res = app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/contests/{id}/open"),
            token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "open contest");
    id
}

/// `n` users made directly in the database, each with a session and an
/// access token signed with [`TEST_SIGNING_KEYS`] (much cheaper than `n`
/// sign-ins when a test needs a crowd).
pub async fn mint_users(app: &TestApp, n: usize) -> Vec<(uuid::Uuid, String)> {
    let mut users = Vec::with_capacity(n);
    let now = chrono::Utc::now();
    for _ in 0..n {
        let id = uuid::Uuid::new_v4();
        let sid = uuid::Uuid::new_v4();
        sqlx::query("INSERT INTO app_user (id, display_name) VALUES ($1, 'crowd')")
            .bind(id)
            .execute(&app.db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO refresh_family (id, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(sid)
            .bind(id)
            .bind(now + chrono::Duration::days(1))
            .execute(&app.db)
            .await
            .unwrap();
        let token = app
            .state
            .auth
            .tokens
            .issue(id, sid, now.timestamp())
            .unwrap();
        users.push((id, token));
    }
    users
}
