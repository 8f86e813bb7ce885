//! The command line: one binary, several subcommands (operations.md).

use clap::{Parser, Subcommand};

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
}
