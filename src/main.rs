//! The thin command-line entry point; everything lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use contest_backend::cli::{Cli, Command};
use contest_backend::config::Settings;
use contest_backend::startup::Application;
use contest_backend::{store, telemetry};
use secrecy::ExposeSecret as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.env, &settings.log, std::io::stdout);

    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let app = Application::build(settings).await?;
                app.run_until_stopped().await?;
            }
            Command::Migrate => {
                store::migrate(settings.database.migration_url().expose_secret()).await?;
                tracing::info!("migrations applied");
            }
        }
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
