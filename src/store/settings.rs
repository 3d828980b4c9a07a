//! Instance-wide values generated once and shared by every instance.

use anyhow::Context;

use super::Store;

/// Returns the value under `key`, storing `generate()` first if there is none.
/// Instances racing on first start agree, because the first insert wins.
pub async fn get_or_create(
    store: &Store,
    key: &str,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(generate())
        .execute(store.pool())
        .await
        .with_context(|| format!("while storing setting {key}"))?;
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_one(store.pool())
        .await
        .with_context(|| format!("while reading setting {key}"))
}

/// An instance secret (256 random bits, hex): created on first use, then
/// shared by every instance through the database.
pub async fn secret(store: &Store, key: &str) -> anyhow::Result<String> {
    get_or_create(store, key, || {
        crate::domain::Token::generate().expose().to_owned()
    })
    .await
}

/// The value under `key`, if there is one.
pub async fn get(store: &Store, key: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(store.pool())
        .await
        .with_context(|| format!("while reading setting {key}"))
}

/// Forgets the value under `key`.
pub async fn delete(store: &Store, key: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM settings WHERE key = $1")
        .bind(key)
        .execute(store.pool())
        .await
        .with_context(|| format!("while deleting setting {key}"))?;
    Ok(())
}
