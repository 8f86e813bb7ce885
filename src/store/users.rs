//! SQL for users.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What a sign-in knows of the Apple account.
pub struct NewAppleUser<'a> {
    pub id: Uuid,
    pub issuer: &'a str,
    pub sub: &'a str,
    pub display_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub is_private_email: bool,
}

/// Finds the live user of an Apple identity, creating it on first sign-in.
/// Returns the user and whether it was created. The name is kept from the
/// first sign-in (Apple sends it only then); the email follows Apple's.
pub async fn upsert_apple_user(
    db: impl PgExecutor<'_>,
    user: NewAppleUser<'_>,
) -> Result<(UserRow, bool), sqlx::Error> {
    let row = sqlx::query!(
        r#"INSERT INTO app_user
               (id, apple_issuer, apple_sub, display_name, email, email_verified, is_private_email)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (apple_issuer, apple_sub) WHERE apple_sub IS NOT NULL
           DO UPDATE SET
               email = COALESCE(EXCLUDED.email, app_user.email),
               email_verified = EXCLUDED.email_verified OR (EXCLUDED.email IS NULL AND app_user.email_verified),
               is_private_email = EXCLUDED.is_private_email,
               display_name = COALESCE(app_user.display_name, EXCLUDED.display_name),
               updated_at = now()
           RETURNING id, display_name, email, roles, deleted_at, created_at,
                     (xmax = 0) AS "created!""#,
        user.id,
        user.issuer,
        user.sub,
        user.display_name,
        user.email,
        user.email_verified,
        user.is_private_email,
    )
    .fetch_one(db)
    .await?;
    Ok((
        UserRow {
            id: row.id,
            display_name: row.display_name,
            email: row.email,
            roles: row.roles,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
        },
        row.created,
    ))
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, display_name, email, roles, deleted_at, created_at FROM app_user WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

/// The live user of an Apple `sub`.
pub async fn find_by_apple_sub(
    db: impl PgExecutor<'_>,
    issuer: &str,
    sub: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, display_name, email, roles, deleted_at, created_at
           FROM app_user WHERE apple_issuer = $1 AND apple_sub = $2"#,
        issuer,
        sub
    )
    .fetch_optional(db)
    .await
}

/// What every authenticated request needs: the user's granted roles, and
/// whether both the user and the token's session are still alive.
pub struct AuthContext {
    pub roles: Vec<String>,
    pub alive: bool,
}

pub async fn auth_context(
    db: impl PgExecutor<'_>,
    user: Uuid,
    session: Uuid,
) -> Result<Option<AuthContext>, sqlx::Error> {
    sqlx::query_as!(
        AuthContext,
        r#"SELECT u.roles,
                  (u.deleted_at IS NULL AND f.revoked_at IS NULL AND f.expires_at > now()) AS "alive!"
           FROM app_user u JOIN refresh_family f ON f.user_id = u.id
           WHERE u.id = $1 AND f.id = $2"#,
        user,
        session
    )
    .fetch_optional(db)
    .await
}

/// Locks a live user's row and returns its granted roles.
pub async fn lock_roles(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT roles FROM app_user WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn set_roles(
    db: impl PgExecutor<'_>,
    id: Uuid,
    roles: &[String],
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"UPDATE app_user SET roles = $2, updated_at = now() WHERE id = $1
           RETURNING id, display_name, email, roles, deleted_at, created_at"#,
        id,
        roles
    )
    .fetch_one(db)
    .await
}

/// Erases a user's personal data; the row stays as the anonymous
/// placeholder that contest and payment records point at.
pub async fn erase(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"UPDATE app_user
           SET apple_issuer = NULL, apple_sub = NULL, display_name = NULL, email = NULL,
               email_verified = false, is_private_email = false, roles = '{}',
               deleted_at = now(), updated_at = now()
           WHERE id = $1 AND deleted_at IS NULL"#,
        id
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
