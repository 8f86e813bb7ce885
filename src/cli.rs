//! The command line: one binary, several subcommands (operations.md).

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::auth::apple::APPLE_ISSUER;
use crate::auth::dev_key::DevKey;
use crate::auth::roles::{Role, Roles};
use crate::auth::sessions::{self, Granter};
use crate::config::Settings;
use crate::store;

#[derive(Debug, Parser)]
#[command(name = "contest-backend", version, about = "Paid-contest backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending migrations with MIGRATION_DATABASE_URL (or DATABASE_URL).
    Migrate,
    /// Grant a role to a user who has signed in once (makes the first admin).
    GrantRole(GrantRole),
    /// `local` and `test` only: print an Apple-style identity token signed
    /// with the local development key, to sign in with curl.
    DevToken(DevToken),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "who")]
pub struct Who {
    /// The user's Apple `sub`.
    #[arg(long)]
    pub apple_sub: Option<String>,
    /// The user's id.
    #[arg(long)]
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Args)]
pub struct GrantRole {
    #[command(flatten)]
    pub who: Who,
    /// organizer, ops or admin.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "one of user, organizer, ops, admin".to_owned())
}

#[derive(Debug, Args)]
pub struct DevToken {
    /// The Apple `sub` to sign in as.
    #[arg(long)]
    pub sub: String,
    #[arg(long)]
    pub email: Option<String>,
    /// A raw nonce; the token then carries its SHA-256, and the same raw
    /// nonce must be sent to /v1/auth/apple.
    #[arg(long)]
    pub nonce: Option<String>,
    /// The `aud` (default: the first of APPLE_CLIENT_IDS).
    #[arg(long)]
    pub audience: Option<String>,
}

pub async fn grant_role(settings: &Settings, args: GrantRole) -> anyhow::Result<()> {
    let db = store::pool(&settings.database)?;
    let user = match (&args.who.apple_sub, args.who.user_id) {
        (Some(sub), _) => store::users::find_by_apple_sub(&db, APPLE_ISSUER, sub).await?,
        (None, Some(id)) => store::users::find(&db, id).await?,
        (None, None) => None,
    }
    .filter(|u| u.deleted_at.is_none())
    .ok_or_else(|| anyhow::anyhow!("no such user: they must sign in once first"))?;
    let current = Roles::from_stored(&user.roles);
    let roles = Roles::from_roles(current.iter().chain([args.role]));
    sessions::set_roles(&db, Granter::CommandLine, user.id, &roles, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}: roles now {}",
        user.id,
        roles
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

pub fn dev_token(settings: &Settings, args: DevToken) -> anyhow::Result<String> {
    anyhow::ensure!(
        settings.env.is_development(),
        "dev-token is refused in {}: only local and test accept development tokens",
        settings.env
    );
    let path = settings
        .apple
        .dev_key_path
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("apple.dev_key_path is not set for {}", settings.env))?;
    let audience = args
        .audience
        .or_else(|| settings.apple.client_ids.first().cloned())
        .ok_or_else(|| anyhow::anyhow!("no audience: set APPLE_CLIENT_IDS or --audience"))?;
    let key = DevKey::load_or_create(path)?;
    key.sign_identity_token(
        &args.sub,
        &audience,
        args.email.as_deref(),
        args.nonce.as_deref(),
    )
}
