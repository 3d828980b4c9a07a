//! `broadsheet subscriber import FILE.csv`: readers who consented elsewhere
//! become confirmed digest readers, with the consent's time and origin kept
//! (G-04). Bad rows are reported by line and skipped; nothing else is lost;
//! importing the same file again changes nothing. This module reads and
//! checks the rows; `batch` writes them, on PostgreSQL through `copy`.

mod batch;
mod copy;

use std::io::Read;

use chrono::DateTime;

use self::batch::Writer;
use crate::{
    domain::{EmailAddress, SubscriberName},
    store::{self, Store, import::ImportedReader},
};

/// The columns an import file has, in this order, under a header row.
pub const COLUMNS: [&str; 5] = ["email", "name", "topics", "consented_at", "source"];

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

/// What every batch of one import shares.
struct Target<'a> {
    file_name: &'a str,
    wording_id: &'a str,
    /// Keys the hashes of suppressed addresses (G-13).
    key: &'a [u8],
}

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

/// Imports `input`; `file_name` and each row's `source` are kept with the consent.
pub async fn import(
    store: &Store,
    input: impl Read,
    file_name: &str,
    wording_id: &str,
    suppression_key: &[u8],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<ImportReport> {
    let records = rows(input)?;
    let target = Target {
        file_name,
        wording_id,
        key: suppression_key,
    };
    let mut writer = Writer::new(store);
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(writer.batch_size());
    let mut rows_seen = 0;
    for row in records {
        rows_seen += 1;
        let line = rows_seen + 1;
        match row {
            Ok(row) => batch.push(row),
            Err(reason) => report.invalid.push((line, reason)),
        }
        if batch.len() == writer.batch_size() {
            writer.write(&mut batch, &target, &mut report).await?;
            progress(rows_seen);
        }
    }
    writer.write(&mut batch, &target, &mut report).await?;
    writer.finish(&target, &mut report).await?;
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

/// A row as the store takes it, with a new id should it be inserted.
fn imported(row: &Row) -> ImportedReader<'_> {
    ImportedReader {
        id: store::new_id(),
        email: row.email.as_entered(),
        email_canonical: row.email.canonical(),
        name: row.name.as_ref().map(SubscriberName::as_str),
        topics: &row.topics,
        consented_at: row.consented_at,
    }
}

/// Where a consent came from: the file, and the row's source if it names one.
fn consent_detail(file_name: &str, source: &str) -> String {
    if source.is_empty() {
        file_name.to_owned()
    } else {
        format!("{file_name}: {source}")
    }
}
