//! `broadsheet config check|show`: the configuration as the service would
//! run with it (defaults, then the file, then `BROADSHEET_*` variables),
//! checked, or printed with its secrets hidden.

use std::path::Path;

use clap::Subcommand;
use serde_json::Value;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and check the configuration, then exit: 0 when it is valid.
    Check,
    /// Print the configuration in force as JSON, passwords and keys hidden.
    Show,
}

/// Keys whose values are secrets, wherever they stand.
const SECRET_KEYS: [&str; 3] = ["password", "postmark_password", "mailgun_signing_key"];

#[allow(clippy::print_stdout)] // stdout is `config show`'s interface
pub fn run(config: &Config, path: Option<&Path>, command: &ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check => {
            // Loading checked it already: an invalid one never gets here.
            let source = match path {
                Some(path) => path.display().to_string(),
                None if Path::new("config.toml").exists() => "./config.toml".into(),
                None => "the built-in defaults".into(),
            };
            eprintln!("the configuration is valid (from {source} and BROADSHEET_* variables)");
        }
        ConfigCommand::Show => {
            let shown = redacted(serde_json::to_value(config)?);
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

/// `value` with every secret replaced by "***", and the password in the
/// database URL too.
fn redacted(mut value: Value) -> Value {
    hide(&mut value);
    if let Some(url) = value.pointer_mut("/database/url") {
        let hidden = url.as_str().and_then(|text| {
            let mut parsed = url::Url::parse(text).ok()?;
            parsed.password()?;
            parsed.set_password(Some("***")).ok()?;
            Some(parsed.to_string())
        });
        if let Some(hidden) = hidden {
            *url = Value::String(hidden);
        }
    }
    value
}

fn hide(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                let secret = SECRET_KEYS.contains(&key.as_str())
                    && inner.as_str().is_some_and(|s| !s.is_empty());
                if secret {
                    *inner = Value::String("***".into());
                } else {
                    hide(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_wherever_they_stand() {
        let mut config = Config::default();
        config.smtp.password = crate::config::Secret::new("hunter2");
        config.database.url = crate::config::Secret::new("postgres://app:s3cret@db/news");
        config.webhooks.mailgun_signing_key = crate::config::Secret::new("mg-key");
        let shown = redacted(serde_json::to_value(&config).unwrap()).to_string();
        for secret in ["hunter2", "s3cret", "mg-key"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://app:***@db/news"), "{shown}");
        assert!(shown.contains(r#""password":"***""#), "{shown}");
        // Empty ones stay empty: "***" would suggest one is set.
        assert!(shown.contains(r#""postmark_password":"""#), "{shown}");
    }
}
