//! The local development key of `local` and `test`: an RSA key, kept in a
//! file under the ignored `.local/` folder, that `contest-backend dev-token`
//! signs Apple-style identity tokens with, and that the service accepts as
//! one more Apple key in those environments only. So anyone can sign in
//! with curl, without an iPhone.

use std::path::Path;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;

use super::apple::APPLE_ISSUER;

/// The `kid` of the development key.
pub const DEV_KID: &str = "contest-backend-dev";

pub struct DevKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl DevKey {
    /// Loads the key at `path`, creating it (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> anyhow::Result<DevKey> {
        let private = match std::fs::read(path) {
            Ok(der) => rsa::PrivateKey::from_pkcs8_der(&der)
                .map_err(|e| anyhow::anyhow!("{} is not a PKCS#8 RSA key: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "creating the local development key");
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
                    .map_err(|e| anyhow::anyhow!("generating the development key: {e}"))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| anyhow::anyhow!("encoding the development key: {e}"))?;
                write_private(path, der.as_bytes())?;
                drop(key);
                // Read back: another process may have won the race.
                return DevKey::load_or_create(path);
            }
            Err(e) => return Err(e.into()),
        };
        let pkcs1 = private
            .to_pkcs1_der()
            .map_err(|e| anyhow::anyhow!("encoding the development key: {e}"))?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let n = b64.encode(private.n_bytes());
        let e = b64.encode(private.e_bytes());
        Ok(DevKey {
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            decoding: DecodingKey::from_rsa_components(&n, &e)?,
        })
    }

    pub fn decoding_key(&self) -> DecodingKey {
        self.decoding.clone()
    }

    /// An identity token as Apple would issue it for `sub`, valid 10 minutes.
    pub fn sign_identity_token(
        &self,
        sub: &str,
        audience: &str,
        email: Option<&str>,
        nonce: Option<&str>,
    ) -> anyhow::Result<String> {
        use sha2::Digest as _;
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "iss": APPLE_ISSUER,
            "aud": audience,
            "sub": sub,
            "iat": now,
            "exp": now + 600,
            "auth_time": now,
            "email_verified": "true",
        });
        if let Some(email) = email {
            claims["email"] = email.into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = hex::encode(sha2::Sha256::digest(nonce.as_bytes())).into();
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(DEV_KID.to_owned());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    // Another process may have created it meanwhile: keep the first one.
    if path.exists() {
        std::fs::remove_file(&tmp)?;
    } else {
        std::fs::rename(&tmp, path)?;
    }
    Ok(())
}
