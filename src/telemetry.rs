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

/// An error and its causes, joined by ": ", each said once: some errors
/// (sqlx's, io's) already end with their cause's text, which `{:#}` would
/// print again. For the CLI's last word and for every logged error.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_ends_with_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(io).context("while connecting: refused");
        assert_eq!(error_text(&error), "while connecting: refused");
        let error = anyhow::anyhow!("the root").context("the context");
        assert_eq!(error_text(&error), "the context: the root");
    }
}
