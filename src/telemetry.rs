//! `tracing` to stdout: JSON in `staging`/`production`, readable text
//! elsewhere (operations.md). `RUST_LOG` overrides the configured filter.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{AppEnv, LogFormat, LogSettings};

/// Installs the global subscriber. Returns `false` when one was already
/// installed (tests install theirs once per process).
pub fn init<W>(env: AppEnv, log: &LogSettings, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => matches!(env, AppEnv::Staging | AppEnv::Production),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(true);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
            .is_ok()
    } else {
        builder.with_ansi(false).try_init().is_ok()
    }
}
