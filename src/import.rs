//! `broadsheet subscriber import FILE.csv`: readers who consented elsewhere
//! become confirmed digest readers, with the consent's time and origin kept
//! (G-04). Bad rows are reported by line and skipped; nothing else is lost;
//! importing the same file again changes nothing.

use std::io::Read;

use chrono::DateTime;

use crate::{
    domain::{EmailAddress, SubscriberName},
    privacy::suppression_hash,
    store::{self, Store, import::ImportedReader},
};

/// The columns an import file has, in this order, under a header row.
pub const COLUMNS: [&str; 5] = ["email", "name", "topics", "consented_at", "source"];
/// Rows written per transaction, each statement taking them as one JSON
/// parameter. On SQLite, 1,000 a batch ran at 22.5k rows/s against 14.1k
/// for 100 (200,000 rows, BENCHMARKS.md).
const BATCH: usize = 1000;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub imported: u64,
    /// Addresses already known: left as they are.
    pub existing: u64,
    /// Erased or bounced addresses, which only a fresh double opt-in brings back.
    pub suppressed: u64,
    /// (line, reason) for each row skipped.
    pub invalid: Vec<(u64, String)>,
}

struct Row {
    email: EmailAddress,
    name: Option<SubscriberName>,
    topics: Vec<String>,
    consented_at: i64,
    source: String,
}

/// Imports `input`; `file_name` and each row's `source` are kept with the consent.
/// `Err(what is wrong)` unless the header row is exactly [`COLUMNS`].
pub fn check_header(headers: &csv::StringRecord) -> Result<(), String> {
    let found: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
    if found == COLUMNS {
        Ok(())
    } else {
        Err(format!(
            "the header row must be {} (found {})",
            COLUMNS.join(","),
            found.join(",")
        ))
    }
}

pub async fn import(
    store: &Store,
    input: impl Read,
    file_name: &str,
    wording_id: &str,
    suppression_key: &[u8],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut rows_seen = 0;
    for row in rows(input)? {
        rows_seen += 1;
        let line = rows_seen + 1;
        match row {
            Ok(row) => batch.push(row),
            Err(reason) => report.invalid.push((line, reason)),
        }
        if batch.len() == BATCH {
            write_batch(
                store,
                &mut batch,
                file_name,
                wording_id,
                suppression_key,
                &mut report,
            )
            .await?;
            progress(rows_seen);
        }
    }
    write_batch(
        store,
        &mut batch,
        file_name,
        wording_id,
        suppression_key,
        &mut report,
    )
    .await?;
    progress(rows_seen);
    store
        .analyze(&[
            "subscribers",
            "accounts",
            "consent_events",
            "preference_topics",
        ])
        .await?;
    Ok(report)
}

/// Reads a CSV as [`import`] does, without a database: the header's
/// problem, or each row's verdict. The CSV fuzz target runs it.
pub fn check(input: impl Read) -> anyhow::Result<Vec<Result<(), String>>> {
    Ok(rows(input)?.map(|row| row.map(drop)).collect())
}

/// The rows of a CSV once its header checks out, each parsed or refused
/// with the reason.
fn rows(input: impl Read) -> anyhow::Result<impl Iterator<Item = Result<Row, String>>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    check_header(reader.headers()?).map_err(anyhow::Error::msg)?;
    Ok(reader
        .into_records()
        .map(|record| record.map_err(|e| e.to_string()).and_then(|r| parse(&r))))
}

fn parse(record: &csv::StringRecord) -> Result<Row, String> {
    if record.len() != COLUMNS.len() {
        return Err(format!(
            "expected {} columns, found {}",
            COLUMNS.len(),
            record.len()
        ));
    }
    let email = EmailAddress::parse(&record[0]).map_err(|e| e.to_string())?;
    let name = SubscriberName::parse_optional(&record[1]).map_err(|e| e.to_string())?;
    let mut topics: Vec<String> = record[2]
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    topics.sort();
    topics.dedup();
    // Bounds the parameters of one multi-row statement (PostgreSQL allows 65,535).
    if topics.len() > 50 {
        return Err("at most 50 topics per reader".into());
    }
    if topics
        .iter()
        .any(|t| t.chars().count() > 50 || t.chars().any(char::is_control))
    {
        return Err("a topic is longer than 50 characters or holds control characters".into());
    }
    let consented_at = DateTime::parse_from_rfc3339(record[3].trim())
        .map_err(|_| {
            "consented_at must be an RFC 3339 time such as 2025-03-01T09:30:00Z".to_owned()
        })?
        .timestamp_millis();
    // A future time would sort after, and so outweigh, a real later withdrawal.
    if consented_at > chrono::Utc::now().timestamp_millis() + 60_000 {
        return Err("consented_at lies in the future".into());
    }
    let source = record[4].trim().chars().take(200).collect();
    Ok(Row {
        email,
        name,
        topics,
        consented_at,
        source,
    })
}

async fn write_batch(
    store: &Store,
    batch: &mut Vec<Row>,
    file_name: &str,
    wording_id: &str,
    key: &[u8],
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut tx = store.begin().await?;
    let hashes: Vec<String> = batch
        .iter()
        .map(|r| suppression_hash(key, r.email.canonical()))
        .collect();
    let suppressed = store::import::suppressed(store, &mut tx, &hashes).await?;
    let mut by_source: std::collections::BTreeMap<&str, Vec<ImportedReader<'_>>> =
        Default::default();
    for (row, hash) in batch.iter().zip(&hashes) {
        if suppressed.contains(hash) {
            report.suppressed += 1;
            continue;
        }
        by_source
            .entry(row.source.as_str())
            .or_default()
            .push(ImportedReader {
                id: store::new_id(),
                email: row.email.as_entered(),
                email_canonical: row.email.canonical(),
                name: row.name.as_ref().map(SubscriberName::as_str),
                topics: &row.topics,
                consented_at: row.consented_at,
            });
    }
    for (source, readers) in &by_source {
        let detail = if source.is_empty() {
            file_name.to_owned()
        } else {
            format!("{file_name}: {source}")
        };
        let inserted =
            store::import::insert_batch(store, &mut tx, readers, wording_id, &detail, now).await?;
        report.imported += inserted.len() as u64;
        report.existing += (readers.len() - inserted.len()) as u64;
    }
    tx.commit().await?;
    batch.clear();
    Ok(())
}
