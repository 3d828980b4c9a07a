//! Structured logs to stderr.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber; `RUST_LOG` wins over `log.level`.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(with_quiet_dependencies(&config.level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// `level`, with the scheduler crate held to warnings unless the level
/// names it: at info it logs its own start-up steps ("Uninited", "Job
/// creator created"), which tell an operator nothing.
fn with_quiet_dependencies(level: &str) -> String {
    if level.contains("tokio_cron_scheduler") {
        level.to_owned()
    } else {
        format!("{level},tokio_cron_scheduler=warn")
    }
}
