//! `broadsheet editor …` and `broadsheet token …`: editors' accounts and
//! API tokens from the server's command line (whoever runs it is an admin).

use std::io::Read as _;

use anyhow::{Context, bail};

use crate::{
    accounts::PasswordHasher,
    audit::Actor,
    clock::{Clock, rfc3339_text},
    config::Config,
    domain::{EmailAddress, NewPassword, mask_email},
    editors::{Editors, Role, tokens},
    store::Store,
};

async fn open(config: &Config) -> anyhow::Result<(Store, Editors)> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    let editors = Editors::new(
        store.clone(),
        Clock::default(),
        // One command, one hash: it may wait as long as it takes.
        PasswordHasher::new(1, std::time::Duration::from_secs(3600))?,
        config.editors.clone(),
    );
    Ok((store, editors))
}

/// `editor add EMAIL`: prints a set-password link, or with
/// `password_stdin` sets the password read from standard input.
pub async fn add(
    config: &Config,
    email: &str,
    role: Role,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let address =
        EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("{}: {e}", mask_email(email)))?;
    let password = if password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        Some(NewPassword::parse(text.strip_suffix('\r').unwrap_or(text))?)
    } else {
        None
    };
    let (store, editors) = open(config).await?;
    let (link, existed) = editors.add(&address, role, &Actor::cli()).await?;
    match password {
        Some(password) => {
            if !editors.set_password(&link, &password).await? {
                bail!("the new editor's link expired at once; check editors.password_link_ttl_h");
            }
            eprintln!(
                "editor {} ({}) can sign in at {}/admin/login",
                address.canonical(),
                role.as_str(),
                config.server.base_url
            );
        }
        None => {
            let done = if existed {
                "was an editor already: role set, and the link below resets their password"
            } else {
                "added; the link below sets their password"
            };
            eprintln!(
                "editor {} ({}) {done}, once, within {} hours:",
                address.canonical(),
                role.as_str(),
                config.editors.password_link_ttl.as_secs() / 3600
            );
            print_line(&format!(
                "{}/admin/password/{}",
                config.server.base_url,
                link.expose()
            ));
        }
    }
    store.close().await;
    Ok(())
}

/// `editor list`: one editor per line, or JSON.
pub async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let (store, editors) = open(config).await?;
    let all = editors.list().await?;
    if json {
        // Times in RFC 3339, as every --json and the API give them.
        let shown: Vec<serde_json::Value> = all
            .iter()
            .map(|editor| {
                serde_json::json!({
                    "id": editor.id,
                    "email": editor.email,
                    "role": editor.role,
                    "created_at": rfc3339_text(editor.created_at),
                    "has_password": editor.has_password.0,
                })
            })
            .collect();
        print_line(&serde_json::to_string_pretty(&shown)?);
    } else {
        for editor in &all {
            let state = if editor.has_password.0 {
                ""
            } else {
                "  (no password yet)"
            };
            print_line(&format!("{}  {}{state}", editor.email, editor.role));
        }
    }
    store.close().await;
    Ok(())
}

/// `token create --name NAME`: prints the secret, once.
pub async fn create_token(config: &Config, name: &str, role: Role) -> anyhow::Result<()> {
    let (store, _) = open(config).await?;
    let token = tokens::create(&store, &Clock::default(), name, role, &Actor::cli()).await??;
    eprintln!(
        "token {name:?} ({}) created; it is shown only now:",
        role.as_str()
    );
    print_line(&token.expose());
    store.close().await;
    Ok(())
}

/// `token list`: names, roles and use, never secrets.
pub async fn list_tokens(config: &Config, json: bool) -> anyhow::Result<()> {
    let (store, _) = open(config).await?;
    let all = tokens::list(&store).await?;
    if json {
        let shown: Vec<serde_json::Value> = all
            .iter()
            .map(|token| {
                serde_json::json!({
                    "id": token.id,
                    "name": token.name,
                    "role": token.role,
                    "created_at": rfc3339_text(token.created_at),
                    "last_used_at": token.last_used_at.map(rfc3339_text),
                    "revoked_at": token.revoked_at.map(rfc3339_text),
                })
            })
            .collect();
        print_line(&serde_json::to_string_pretty(&shown)?);
    } else {
        for token in &all {
            let state = if token.revoked_at.is_some() {
                "  revoked"
            } else {
                ""
            };
            print_line(&format!("{}  {}{state}", token.name, token.role));
        }
    }
    store.close().await;
    Ok(())
}

pub async fn revoke_token(config: &Config, name: &str) -> anyhow::Result<()> {
    let (store, _) = open(config).await?;
    let revoked = tokens::revoke(&store, &Clock::default(), name, &Actor::cli()).await?;
    store.close().await;
    if !revoked {
        bail!("no live token is called {name:?}");
    }
    eprintln!("token {name:?} revoked");
    Ok(())
}

#[allow(clippy::print_stdout)] // stdout is these commands' interface
fn print_line(text: &str) {
    println!("{text}");
}
