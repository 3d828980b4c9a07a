//! Digest schedules' state (`digest_schedules`): the last firing acted on.

use anyhow::Context;

use super::Conn;

/// Locks a schedule's row for the rest of the transaction, creating it on
/// first sight with `last_fire_at` as its last acted-on firing.
/// Every campaign of the schedule is created under this lock, so a "send
/// now" and a scheduled firing never choose the same unsent articles.
pub async fn lock_schedule(conn: &mut Conn, name: &str, last_fire_at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO digest_schedules (name, last_fire_at) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(last_fire_at)
    .execute(&mut *conn)
    .await
    .context("while creating schedule state")?;
    // A write locks the row on both databases; on PostgreSQL the statements
    // after it see what the transaction that held the lock committed.
    sqlx::query("UPDATE digest_schedules SET last_fire_at = last_fire_at WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .context("while locking schedule state")?;
    Ok(())
}

/// Claims a firing: true for the one instance that moves `last_fire_at` forward.
pub async fn claim_firing(conn: &mut Conn, name: &str, fire_at: i64) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE digest_schedules SET last_fire_at = $1 WHERE name = $2 AND last_fire_at < $1",
    )
    .bind(fire_at)
    .bind(name)
    .execute(&mut *conn)
    .await
    .context("while claiming a firing")?;
    Ok(result.rows_affected() == 1)
}
