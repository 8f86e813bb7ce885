//! Sign-in sessions: signing in with Apple, refreshing, logging out,
//! deleting the account, changing roles. Each is one transaction, with its
//! audit row inside it.

use std::net::IpAddr;

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::Auth;
use super::apple::AppleIdentity;
use super::refresh;
use super::roles::{Role, Roles};
use crate::audit::{self, AuditEvent, AuditKind, Outcome};
use crate::error::{ApiError, ErrorCode};
use crate::store::users::{NewAppleUser, UserRow};
use crate::store::{sessions, users};

/// Tokens handed to the app, and the user they are for.
pub struct Session {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: UserRow,
}

fn issue(
    auth: &Auth,
    user: UserRow,
    family: Uuid,
    refresh_token: String,
) -> Result<Session, ApiError> {
    let access_token = auth
        .tokens
        .issue(user.id, family, Utc::now().timestamp())
        .map_err(ApiError::internal)?;
    Ok(Session {
        access_token,
        expires_in: auth.tokens.ttl_secs(),
        refresh_token,
        user,
    })
}

/// First sign-in creates the user; later ones find it by (issuer, `sub`).
pub async fn sign_in(
    auth: &Auth,
    db: &PgPool,
    identity: &AppleIdentity,
    display_name: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Session, ApiError> {
    let mut tx = db.begin().await?;
    let (user, created) = users::upsert_apple_user(
        &mut *tx,
        NewAppleUser {
            id: Uuid::new_v4(),
            issuer: &identity.issuer,
            sub: &identity.sub,
            display_name,
            email: identity.email.as_deref(),
            email_verified: identity.email_verified,
            is_private_email: identity.is_private_email,
        },
    )
    .await?;
    let family = Uuid::new_v4();
    sessions::create_family(&mut *tx, family, user.id, Utc::now() + auth.refresh_ttl).await?;
    let (token, hash) =
        refresh::generate().map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    sessions::insert_token(&mut *tx, family, &hash).await?;
    audit::record(
        &mut *tx,
        AuditEvent::new(AuditKind::SignIn, Outcome::Success)
            .actor(user.id)
            .subject(user.id)
            .client_ip(ip)
            .details(serde_json::json!({ "new_user": created, "session": family })),
    )
    .await?;
    tx.commit().await?;
    issue(auth, user, family, token)
}

/// Exchanges a refresh token for a new one of the same family. A spent
/// token revokes the whole family.
pub async fn refresh(
    auth: &Auth,
    db: &PgPool,
    presented: &str,
    ip: Option<IpAddr>,
) -> Result<Session, ApiError> {
    let invalid = || ApiError::new(ErrorCode::RefreshTokenInvalid);
    if !refresh::is_well_formed(presented) {
        return Err(invalid());
    }
    let mut tx = db.begin().await?;
    let Some(token) = sessions::lock_presented(&mut *tx, &refresh::hash(presented)).await? else {
        return Err(invalid());
    };
    if token.revoked_at.is_some() || token.expires_at <= Utc::now() {
        return Err(invalid());
    }
    if token.used_at.is_some() {
        sessions::revoke_family(
            &mut *tx,
            token.family_id,
            token.user_id,
            "refresh_token_reuse",
        )
        .await?;
        audit::record(
            &mut *tx,
            AuditEvent::new(AuditKind::RefreshReuse, Outcome::Failure)
                .reason("spent refresh token presented; family revoked")
                .subject(token.user_id)
                .client_ip(ip)
                .details(serde_json::json!({
                    "session": token.family_id,
                    "token": audit::fingerprint(presented),
                })),
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::new(ErrorCode::RefreshTokenReused));
    }
    let user = users::find(&mut *tx, token.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(invalid)?;
    sessions::mark_used(&mut *tx, token.token_id).await?;
    let (next, hash) =
        refresh::generate().map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    sessions::insert_token(&mut *tx, token.family_id, &hash).await?;
    tx.commit().await?;
    issue(auth, user, token.family_id, next)
}

/// Revokes the session of the presented refresh token when it is the
/// caller's, else the session of the access token.
pub async fn logout(
    db: &PgPool,
    user: Uuid,
    session: Uuid,
    presented: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    let family = match presented.filter(|t| refresh::is_well_formed(t)) {
        Some(token) => sessions::family_of(&mut *tx, &refresh::hash(token), user)
            .await?
            .unwrap_or(session),
        None => session,
    };
    let revoked = sessions::revoke_family(&mut *tx, family, user, "logout").await?;
    audit::record(
        &mut *tx,
        AuditEvent::new(AuditKind::Logout, Outcome::Success)
            .actor(user)
            .subject(user)
            .client_ip(ip)
            .details(serde_json::json!({ "session": family, "revoked": revoked })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Account deletion (security.md): every session revoked, personal data
/// erased; the row stays as the anonymous placeholder that contest and
/// payment records point at. The service holds no Apple refresh token (it
/// never exchanges the authorization code), so there is none to revoke at
/// Apple.
pub async fn delete_account(db: &PgPool, user: Uuid, ip: Option<IpAddr>) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    let sessions_revoked = sessions::revoke_all(&mut *tx, user, "account_deleted").await?;
    if !users::erase(&mut *tx, user).await? {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    audit::record(
        &mut *tx,
        AuditEvent::new(AuditKind::AccountDeletion, Outcome::Success)
            .actor(user)
            .subject(user)
            .client_ip(ip)
            .details(serde_json::json!({ "sessions_revoked": sessions_revoked })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Who changes roles: a user (by id) or the command line.
#[derive(Debug, Clone, Copy)]
pub enum Granter {
    User(Uuid),
    CommandLine,
}

/// Sets `target`'s granted roles. An admin cannot change their own.
pub async fn set_roles(
    db: &PgPool,
    granter: Granter,
    target: Uuid,
    roles: &Roles,
    ip: Option<IpAddr>,
) -> Result<UserRow, ApiError> {
    if let Granter::User(admin) = granter
        && admin == target
    {
        return Err(ApiError::new(ErrorCode::Forbidden)
            .with_message("an admin cannot change their own roles"));
    }
    let mut tx = db.begin().await?;
    let before = users::lock_roles(&mut *tx, target)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound).with_message("no such user"))?;
    let after = roles.to_stored();
    let user = users::set_roles(&mut *tx, target, &after).await?;
    let mut event = AuditEvent::new(AuditKind::RoleChange, Outcome::Success)
        .subject(target)
        .client_ip(ip)
        .details(serde_json::json!({
            "from": Roles::from_stored(&before).iter().map(Role::as_str).collect::<Vec<_>>(),
            "to": roles.iter().map(Role::as_str).collect::<Vec<_>>(),
            "by": match granter { Granter::User(_) => "api", Granter::CommandLine => "cli" },
        }));
    if let Granter::User(admin) = granter {
        event = event.actor(admin);
    }
    audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(user)
}
