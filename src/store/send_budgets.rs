//! `send_budgets` and `domain_holds`: what digests may go now, shared by
//! every instance on the database. A budget is a count per scope (a
//! receiving domain, the warm-up) and period (a minute, a day), taken
//! from by reservations; a hold keeps a domain's digests back until a time.

use anyhow::Context;

use super::Store;

/// Reserves up to `wanted` of `limit` for `scope` in `period`; returns
/// how many were granted (0 when the period's budget is spent).
/// One row per scope and period; the update takes what is left in one
/// statement, so instances reserving at once never exceed `limit`.
pub async fn reserve(
    store: &Store,
    scope: &str,
    period: i64,
    wanted: i64,
    limit: i64,
) -> anyhow::Result<i64> {
    if wanted <= 0 {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO send_budgets (scope, period, used, granted) VALUES ($1, $2, 0, 0)
         ON CONFLICT (scope, period) DO NOTHING",
    )
    .bind(scope)
    .bind(period)
    .execute(store.pool())
    .await
    .context("while opening a send budget")?;
    // Every expression of SET reads the row as it was: `granted` is what
    // this reservation took, on SQLite and PostgreSQL alike.
    let granted: Option<i64> = sqlx::query_scalar(
        "UPDATE send_budgets
         SET granted = CASE WHEN $3 - used < $4 THEN $3 - used ELSE $4 END,
             used = used + CASE WHEN $3 - used < $4 THEN $3 - used ELSE $4 END
         WHERE scope = $1 AND period = $2 AND used < $3
         RETURNING granted",
    )
    .bind(scope)
    .bind(period)
    .bind(limit)
    .bind(wanted)
    .fetch_optional(store.pool())
    .await
    .context("while reserving from a send budget")?;
    Ok(granted.unwrap_or(0))
}

/// Gives back `count` of a reservation that was not used.
pub async fn give_back(store: &Store, scope: &str, period: i64, count: i64) -> anyhow::Result<()> {
    if count <= 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE send_budgets SET used = CASE WHEN used > $3 THEN used - $3 ELSE 0 END
         WHERE scope = $1 AND period = $2",
    )
    .bind(scope)
    .bind(period)
    .bind(count)
    .execute(store.pool())
    .await
    .context("while giving back a send budget")?;
    Ok(())
}

/// How much of `scope`'s budget for `period` is spent.
pub async fn used(store: &Store, scope: &str, period: i64) -> anyhow::Result<i64> {
    let used: Option<i64> =
        sqlx::query_scalar("SELECT used FROM send_budgets WHERE scope = $1 AND period = $2")
            .bind(scope)
            .bind(period)
            .fetch_optional(store.pool())
            .await
            .context("while reading a send budget")?;
    Ok(used.unwrap_or(0))
}

/// Forgets budgets of periods that started before `before`.
pub async fn purge(store: &Store, before: i64) -> anyhow::Result<u64> {
    let result = sqlx::query("DELETE FROM send_budgets WHERE period < $1")
        .bind(before)
        .execute(store.pool())
        .await
        .context("while purging old send budgets")?;
    Ok(result.rows_affected())
}

/// Keeps `domain`'s digests back until `until` (or later, if already so).
pub async fn hold_domain(
    store: &Store,
    domain: &str,
    until: i64,
    reason: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO domain_holds (domain, until, reason) VALUES ($1, $2, $3)
         ON CONFLICT (domain) DO UPDATE SET
             reason = excluded.reason,
             until = CASE WHEN excluded.until > domain_holds.until
                          THEN excluded.until ELSE domain_holds.until END",
    )
    .bind(domain)
    .bind(until)
    .bind(reason)
    .execute(store.pool())
    .await
    .context("while holding a domain back")?;
    Ok(())
}

/// The domains held back at `now`, with until when and why.
pub async fn held_domains(store: &Store, now: i64) -> anyhow::Result<Vec<(String, i64, String)>> {
    sqlx::query_as("SELECT domain, until, reason FROM domain_holds WHERE until > $1")
        .bind(now)
        .fetch_all(store.pool())
        .await
        .context("while reading held domains")
}
