//! Writing an import's rows, a batch per transaction: on SQLite, statements
//! that each take the whole batch as one JSON parameter (`store::import`);
//! on PostgreSQL, COPY into a staging table and one statement from it,
//! several batches at once (`copy`). Both write the same rows and report the
//! same counts.

use std::collections::BTreeMap;

use super::{ImportReport, Row, Target, consent_detail, copy::CopyWriters, imported};
use crate::{
    privacy::suppression_hash,
    store::{self, Backend, Store, import::ImportedReader},
};

/// Rows written per transaction, each statement taking them as one JSON
/// parameter. On SQLite, 1,000 a batch ran at 22.5k rows/s against 14.1k
/// for 100 (200,000 rows, BENCHMARKS.md).
const BATCH: usize = 1000;

/// Where an import's batches go.
pub(super) enum Writer<'s> {
    Json(&'s Store),
    Copy(CopyWriters<'s>),
}

impl<'s> Writer<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        match store.backend() {
            Backend::Sqlite => Self::Json(store),
            Backend::Postgres => Self::Copy(CopyWriters::new(store)),
        }
    }

    pub(super) fn batch_size(&self) -> usize {
        match self {
            Self::Json(_) => BATCH,
            Self::Copy(_) => super::copy::BATCH,
        }
    }

    /// Writes the batch in one transaction (on PostgreSQL, starts to),
    /// counts into `report` what is done, and empties it.
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
            Self::Copy(writers) => writers.write(batch, target, report).await?,
        }
        batch.clear();
        Ok(())
    }

    /// Waits for the batches still being written and counts them.
    pub(super) async fn finish(
        self,
        target: &Target<'_>,
        report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        match self {
            Self::Json(_) => Ok(()),
            Self::Copy(writers) => writers.finish(target, report).await,
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
