//! SQL for sign-in sessions: refresh-token families and their tokens.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

pub async fn create_family(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO refresh_family (id, user_id, expires_at) VALUES ($1, $2, $3)",
        id,
        user,
        expires_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_token(
    db: impl PgExecutor<'_>,
    family: Uuid,
    hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO refresh_token (id, family_id, token_hash) VALUES ($1, $2, $3)",
        Uuid::new_v4(),
        family,
        hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A presented refresh token and the state of its family.
pub struct PresentedToken {
    pub token_id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Finds the token by its hash and locks it and its family, so two
/// concurrent uses of one token cannot both rotate it.
pub async fn lock_presented(
    db: impl PgExecutor<'_>,
    hash: &[u8],
) -> Result<Option<PresentedToken>, sqlx::Error> {
    sqlx::query_as!(
        PresentedToken,
        r#"SELECT t.id AS token_id, t.family_id, f.user_id, t.used_at, f.expires_at, f.revoked_at
           FROM refresh_token t JOIN refresh_family f ON f.id = t.family_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t, f"#,
        hash
    )
    .fetch_optional(db)
    .await
}

pub async fn mark_used(db: impl PgExecutor<'_>, token: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refresh_token SET used_at = now(), updated_at = now() WHERE id = $1",
        token
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes one family of `user`; `false` when there was none alive.
pub async fn revoke_family(
    db: impl PgExecutor<'_>,
    family: Uuid,
    user: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE refresh_family SET revoked_at = now(), revoked_reason = $3, updated_at = now()
           WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"#,
        family,
        user,
        reason
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live family of `user`; returns how many.
pub async fn revoke_all(
    db: impl PgExecutor<'_>,
    user: Uuid,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE refresh_family SET revoked_at = now(), revoked_reason = $2, updated_at = now()
           WHERE user_id = $1 AND revoked_at IS NULL"#,
        user,
        reason
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The family a presented refresh token belongs to, if it is `user`'s.
pub async fn family_of(
    db: impl PgExecutor<'_>,
    hash: &[u8],
    user: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT t.family_id FROM refresh_token t JOIN refresh_family f ON f.id = t.family_id
           WHERE t.token_hash = $1 AND f.user_id = $2"#,
        hash,
        user
    )
    .fetch_optional(db)
    .await
}
