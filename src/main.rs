//! The thin command-line entry point; everything lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use contest_backend::cli::{self, Cli, Command};
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
    // Subcommands other than `serve` print their result to stdout: their
    // logs go to stderr.
    match cli.command {
        None | Some(Command::Serve) => {
            telemetry::init(settings.env, &settings.log, std::io::stdout);
        }
        Some(_) => {
            telemetry::init(settings.env, &settings.log, std::io::stderr);
        }
    }

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
            Command::GrantRole(args) => cli::grant_role(&settings, args).await?,
            Command::DevToken(args) => println!("{}", cli::dev_token(&settings, args)?),
        }
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
