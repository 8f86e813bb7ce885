//! A fake of Sign in with Apple for the tests: RSA signing keys that mint
//! identity tokens the way Apple does, and a loopback HTTP server that serves
//! their JWK set at `/auth/keys` the way `https://appleid.apple.com/auth/keys`
//! does, with a fetch counter, key rotation and an outage switch.
//!
//! No database is involved: any `#[actix_web::test]` can use this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::sha2::{Digest as _, Sha256};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Apple's issuer, the `iss` of every identity token.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// Modulus size of Apple's keys.
const RSA_BITS: usize = 2048;

/// An RSA key pair usable as an Apple signing key.
#[derive(Clone)]
pub struct AppleKey {
    pub kid: String,
    private: rsa::PrivateKey,
    encoding: EncodingKey,
    /// Modulus, base64url without padding (the JWK `n`).
    n: String,
    /// Public exponent, base64url without padding (the JWK `e`).
    e: String,
}

impl std::fmt::Debug for AppleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AppleKey {
    /// A fresh RSA 2048 key pair (e = 65537) with key id `kid`; every call
    /// generates a new key, even for a `kid` already used.
    pub fn generate(kid: &str) -> AppleKey {
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
            .expect("RSA key generation with the OS RNG");
        Self::from_private(kid, private)
    }

    /// The same key pair under another key id (e.g. a key served under a
    /// `kid` other than the one it signed with).
    pub fn with_kid(&self, kid: &str) -> AppleKey {
        AppleKey {
            kid: kid.to_owned(),
            ..self.clone()
        }
    }

    fn from_private(kid: &str, private: rsa::PrivateKey) -> AppleKey {
        let der = private
            .to_pkcs1_der()
            .expect("PKCS#1 encoding of an RSA private key");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let n = URL_SAFE_NO_PAD.encode(private.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(private.e_bytes());
        AppleKey {
            kid: kid.to_owned(),
            private,
            encoding,
            n,
            e,
        }
    }

    /// The public key as Apple publishes it in its key set.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": self.n,
            "e": self.e,
        })
    }

    /// PKCS#1 DER of the public key: the bytes a naive verifier would feed to
    /// `DecodingKey::from_rsa_der`, and so the "secret" of an HS256 forgery.
    pub fn public_der_pkcs1(&self) -> Vec<u8> {
        self.private
            .to_public_key()
            .to_pkcs1_der()
            .expect("PKCS#1 encoding of an RSA public key")
            .into_vec()
    }

    /// Signs `claims` with RS256 under this key's kid
    /// (header `{"alg":"RS256","kid":kid,"typ":"JWT"}`).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(header, claims)
    }

    /// Signs with this key and a custom header (another kid, no kid, an
    /// extra field…). The header's `alg` must be an RSA one (RS*/PS*).
    pub fn sign_with_header(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing with an RSA key")
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims Apple would put in an identity token for `sub`, valid now for
/// `aud` (the app's bundle id): `iat` and `auth_time` now, `exp` in ten
/// minutes, a private-relay e-mail, and `email_verified` / `is_private_email`
/// as the string `"true"`, as Apple often sends them. Edit the returned
/// object to add a `nonce` or break a claim.
pub fn apple_claims(sub: &str, aud: &str) -> Value {
    let now = now();
    json!({
        "iss": APPLE_ISSUER,
        "aud": aud,
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "auth_time": now,
        "email": format!("{sub}@privaterelay.appleid.com"),
        "email_verified": "true",
        "is_private_email": "true",
    })
}

/// Lowercase hex SHA-256 of a raw nonce: what the app gives Apple, and so
/// the `nonce` claim of the token.
pub fn hashed_nonce(raw: &str) -> String {
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A JWK set (`{"keys":[…]}`) of `keys`, in order.
pub fn jwk_set(keys: &[&AppleKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

struct ServerState {
    /// The body served at `/auth/keys`.
    body: Mutex<String>,
    failing: AtomicBool,
    fetches: AtomicUsize,
}

/// A loopback HTTP/1.1 server that serves a JWK set at `GET /auth/keys`
/// and counts fetches. One response per connection (`Connection: close`);
/// other paths get 404, other methods 405. Stops when dropped.
pub struct KeyServer {
    port: u16,
    state: Arc<ServerState>,
    accept_loop: JoinHandle<()>,
}

impl KeyServer {
    /// Starts on 127.0.0.1:0 inside the current tokio (actix) runtime,
    /// serving `keys`.
    pub async fn start(keys: &[&AppleKey]) -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(ServerState {
            body: Mutex::new(jwk_set(keys).to_string()),
            failing: AtomicBool::new(false),
            fetches: AtomicUsize::new(0),
        });
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        KeyServer {
            port,
            state,
            accept_loop,
        }
    }

    /// `http://127.0.0.1:<port>/auth/keys`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/auth/keys", self.port)
    }

    /// How many `GET /auth/keys` requests arrived so far, answered with the
    /// key set or with a 503 while failing.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Replaces the served set (key rotation).
    pub fn set_keys(&self, keys: &[&AppleKey]) {
        self.set_body(&jwk_set(keys));
    }

    /// Serves `body` verbatim as the key set (e.g. a malformed one).
    pub fn set_body(&self, body: &Value) {
        *self.state.body.lock().unwrap() = body.to_string();
    }

    /// While true, `/auth/keys` answers 503 (a failed fetch).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, Arc::clone(&state)));
            }
            // Out of file descriptors and the like: back off, keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Reads one request head, answers it, closes the connection.
async fn serve_connection(mut stream: TcpStream, state: Arc<ServerState>) {
    let Ok(Some(head)) =
        tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream)).await
    else {
        return;
    };
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();

    let (status, body) = match (method, path) {
        ("GET", "/auth/keys") => {
            state.fetches.fetch_add(1, Ordering::SeqCst);
            if state.failing.load(Ordering::SeqCst) {
                (
                    "503 Service Unavailable",
                    r#"{"error":"unavailable"}"#.to_owned(),
                )
            } else {
                ("200 OK", state.body.lock().unwrap().clone())
            }
        }
        (_, "/auth/keys") => ("405 Method Not Allowed", r#"{"error":"method"}"#.to_owned()),
        _ => ("404 Not Found", r#"{"error":"not found"}"#.to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request head up to the blank line, or `None` if the peer closed
/// first or sent more than 16 KiB of headers. A GET has no body to drain.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..read]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    }
}
