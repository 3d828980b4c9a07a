//! The lines `serve` logs once started.

use crate::{
    app::Role,
    config::{Config, MailTransport},
    store,
};

/// What an operator checks first at start: where to open the site, which
/// database is in use (a new SQLite file is called new, so that a mistyped
/// path is noticed), and where mail goes.
pub struct StartupSummary {
    base_url: String,
    database: String,
    mail: String,
}

impl StartupSummary {
    /// Read before the app is built: building creates a missing SQLite file.
    pub fn of(config: &Config) -> Self {
        let url = config.database.url.expose();
        let database = match store::sqlite_path(url) {
            Some(file) if !file.exists() => {
                format!("SQLite, a new file created at {}", file.display())
            }
            Some(file) => format!("SQLite file {}", file.display()),
            None if url.starts_with("sqlite:") => "SQLite in memory".into(),
            None => format!("PostgreSQL at {}", store::server_of(url)),
        };
        let mail = match config.mail.transport {
            MailTransport::File => format!(
                "written as .eml files into {} (mail.transport = \"file\"; nothing is sent)",
                config.mail.file_dir.display()
            ),
            MailTransport::Smtp if config.smtp.relays.is_empty() => format!(
                "sent over SMTP to {}:{}",
                config.smtp.host, config.smtp.port
            ),
            MailTransport::Smtp => {
                let relays: Vec<String> = config
                    .smtp
                    .relays
                    .iter()
                    .map(|relay| format!("{}:{}", relay.host, relay.port))
                    .collect();
                format!("sent over SMTP to the relays {}", relays.join(", "))
            }
        };
        Self {
            base_url: config.server.base_url.clone(),
            database,
            mail,
        }
    }

    pub fn log(&self, role: Role) {
        if role != Role::Worker {
            tracing::info!(
                "open {}/ (readers) and {}/admin (editors)",
                self.base_url,
                self.base_url
            );
        }
        tracing::info!("database: {}", self.database);
        tracing::info!("mail: {}", self.mail);
    }
}
