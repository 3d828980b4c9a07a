//! Writing an import's rows, a batch per transaction: on SQLite, statements
//! that each take the whole batch as one JSON parameter (`store::import`);
//! on PostgreSQL, a COPY into a staging table and one statement from it
//! (`store::import_copy`), which the server takes in bulk. Both write the
//! same rows and report the same counts.

use std::collections::BTreeMap;

use super::{ImportReport, Row};
use crate::{
    domain::SubscriberName,
    privacy::suppression_hash,
    store::{
        self, Backend, Store,
        import::ImportedReader,
        import_copy::{CopyImport, StagedReader},
    },
};

/// Rows written per transaction, each statement taking them as one JSON
/// parameter. On SQLite, 1,000 a batch ran at 22.5k rows/s against 14.1k
/// for 100 (200,000 rows, BENCHMARKS.md).
const BATCH: usize = 1000;
/// Rows per COPY and transaction on PostgreSQL: more rows share each
/// commit and round trip, and the staging table (about 3 MB at 10,000)
/// still fits PostgreSQL's default 8 MB of `temp_buffers`, the memory of
/// temporary tables. Chosen, not yet measured against 1,000.
const COPY_BATCH: usize = 10_000;

/// What every batch of one import shares.
pub(super) struct Target<'a> {
    pub(super) file_name: &'a str,
    pub(super) wording_id: &'a str,
    /// Keys the hashes of suppressed addresses (G-13).
    pub(super) key: &'a [u8],
}

/// Where an import's batches go. The pool's `Any` driver cannot COPY, so
/// on PostgreSQL the import holds a connection of its own.
pub(super) enum Writer<'s> {
    Json(&'s Store),
    Copy(CopyImport),
}

impl<'s> Writer<'s> {
    pub(super) async fn open(store: &'s Store) -> anyhow::Result<Self> {
        Ok(match store.backend() {
            Backend::Sqlite => Self::Json(store),
            Backend::Postgres => Self::Copy(CopyImport::open(store).await?),
        })
    }

    pub(super) fn batch_size(&self) -> usize {
        match self {
            Self::Json(_) => BATCH,
            Self::Copy(_) => COPY_BATCH,
        }
    }

    /// Writes the batch in one transaction, counts it into `report`, and
    /// empties it.
    pub(super) async fn write(
        &mut self,
        batch: &mut Vec<Row>,
        target: &Target<'_>,
        report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            Self::Json(store) => write_json(store, batch, target, report).await?,
            Self::Copy(copy) => write_copy(copy, batch, target, report).await?,
        }
        batch.clear();
        Ok(())
    }

    pub(super) async fn close(self) {
        if let Self::Copy(copy) = self {
            copy.close().await;
        }
    }
}

/// The suppressed addresses looked up first, then the statements once per
/// source, as each source has its own consent detail.
async fn write_json(
    store: &Store,
    batch: &[Row],
    target: &Target<'_>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut tx = store.begin().await?;
    let hashes: Vec<String> = batch
        .iter()
        .map(|r| suppression_hash(target.key, r.email.canonical()))
        .collect();
    let suppressed = store::import::suppressed(store, &mut tx, &hashes).await?;
    let mut by_source: BTreeMap<&str, Vec<ImportedReader<'_>>> = BTreeMap::new();
    for (row, hash) in batch.iter().zip(&hashes) {
        if suppressed.contains(hash) {
            report.suppressed += 1;
            continue;
        }
        by_source
            .entry(row.source.as_str())
            .or_default()
            .push(imported(row));
    }
    for (source, readers) in &by_source {
        let detail = consent_detail(target.file_name, source);
        let inserted =
            store::import::insert_batch(store, &mut tx, readers, target.wording_id, &detail, now)
                .await?;
        report.imported += inserted.len() as u64;
        report.existing += (readers.len() - inserted.len()) as u64;
    }
    tx.commit().await?;
    Ok(())
}

/// The same readers and consent details, each row with its address's hash:
/// the server skips the suppressed ones and counts them.
async fn write_copy(
    copy: &mut CopyImport,
    batch: &[Row],
    target: &Target<'_>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let readers: Vec<StagedReader<'_>> = batch
        .iter()
        .map(|row| StagedReader {
            reader: imported(row),
            email_hash: suppression_hash(target.key, row.email.canonical()),
            detail: consent_detail(target.file_name, &row.source),
        })
        .collect();
    let written = copy.write(&readers, target.wording_id, now).await?;
    report.imported += written.inserted;
    report.existing += written.existing;
    report.suppressed += written.suppressed;
    Ok(())
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
