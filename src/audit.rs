//! Who did what, when: every editor action, from the console, the API or
//! the CLI, is one row in the audit log (S-10), written in the same
//! transaction as the change it describes.

use crate::store::{self, Conn, audit::AuditEntry};

/// What an editor or token may do: admins also manage editors and tokens,
/// and export or erase readers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    /// The role stored in a row; anything unknown gets the lesser one.
    pub fn from_stored(value: &str) -> Self {
        if value == "admin" {
            Self::Admin
        } else {
            Self::Editor
        }
    }
}

/// Who acts: a signed-in editor, an API token or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `editor:<email>`, `token:<name>` or `cli`, as the log shows it.
    pub label: String,
    pub role: Role,
}

impl Actor {
    pub fn editor(email: &str, role: Role) -> Self {
        Self {
            label: format!("editor:{email}"),
            role,
        }
    }

    pub fn token(name: &str, role: Role) -> Self {
        Self {
            label: format!("token:{name}"),
            role,
        }
    }

    /// Whoever can run the binary on the server can do anything.
    pub fn cli() -> Self {
        Self {
            label: "cli".into(),
            role: Role::Admin,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Writes one entry; `detail` is a JSON object of what matters to a reader of the log.
pub async fn record(
    conn: &mut Conn,
    now: i64,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = AuditEntry {
        id: store::new_id(),
        at: now,
        actor: actor.label.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_string(),
    };
    store::audit::record(conn, &entry).await?;
    tracing::info!(event = "audit", actor = %actor.label, action, target, "editor action");
    Ok(())
}

pub async fn list(
    store: &store::Store,
    before: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<AuditEntry>> {
    store::audit::list(store.pool(), before, limit).await
}
