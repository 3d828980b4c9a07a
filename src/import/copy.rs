//! An import's batches on PostgreSQL, several at once: each is encoded for
//! COPY here and written by a task of its own over one of a few
//! connections (`store::import_copy`). The server does one connection's
//! work on one core, and that work (a row, its index entries and its
//! foreign-key checks in four tables) is what an import waits for.
//!
//! A row whose address a batch still being written holds is kept back
//! until the end, when that batch has committed: so the first row of an
//! address in the file wins, as when batches are written one by one, and
//! no two batches written at once ever wait for each other's rows.

use std::collections::HashSet;

use anyhow::Context;
use tokio::task::JoinSet;

use super::{ImportReport, Row, Target, consent_detail, imported};
use crate::{
    privacy::suppression_hash,
    store::{
        Store,
        import_copy::{CopyImport, EncodedBatch, StagedReader, Written},
    },
};

/// Rows per COPY and transaction: more rows share each commit and round
/// trip, and the staging table (about 3 MB at 10,000) still fits
/// PostgreSQL's default 8 MB of `temp_buffers`, the memory of temporary
/// tables. Chosen, not yet measured against 1,000.
pub(super) const BATCH: usize = 10_000;

/// Connections writing batches at once. Replayed with psql, this module's
/// statement ran at 27,486 rows/s in two sessions against 13,125 in one
/// (100,000 rows, PostgreSQL 15, a busy two-core machine); more than two
/// is yet to be measured.
const WRITERS: usize = 2;

/// A batch's task, done: its connection, the addresses it held, what it wrote.
struct Finished {
    copy: CopyImport,
    addresses: Vec<String>,
    written: anyhow::Result<Written>,
}

pub(super) struct CopyWriters<'s> {
    store: &'s Store,
    /// Connections between batches; at most [`WRITERS`] are opened.
    idle: Vec<CopyImport>,
    opened: usize,
    /// Batches being written, each holding its connection until done.
    /// Dropped (on an error), it stops them and their transactions roll back.
    writing: JoinSet<Finished>,
    /// The addresses of the batches being written.
    held: HashSet<String>,
    /// Rows kept back because a batch being written held their address.
    later: Vec<Row>,
}

impl<'s> CopyWriters<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Self {
            store,
            idle: Vec::new(),
            opened: 0,
            writing: JoinSet::new(),
            held: HashSet::new(),
            later: Vec::new(),
        }
    }

    /// Starts writing the batch as soon as a connection is free, keeping
    /// back its rows whose address another batch holds; counts into
    /// `report` the batches that finished meanwhile. Empties `batch`.
    pub(super) async fn write(
        &mut self,
        batch: &mut Vec<Row>,
        target: &Target<'_>,
        report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        let copy = self.connection(report).await?;
        let mut rows = Vec::with_capacity(batch.len());
        let mut addresses = Vec::with_capacity(batch.len());
        for row in batch.drain(..) {
            if self.held.contains(row.email.canonical()) {
                self.later.push(row);
            } else {
                addresses.push(row.email.canonical().to_owned());
                rows.push(row);
            }
        }
        self.held.extend(addresses.iter().cloned());
        self.start(copy, &rows, addresses, target);
        Ok(())
    }

    /// Waits for every batch, then writes the rows kept back, one batch at
    /// a time, and closes the connections.
    pub(super) async fn finish(
        mut self,
        target: &Target<'_>,
        report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        self.wait_all(report).await?;
        let later = std::mem::take(&mut self.later);
        for rows in later.chunks(BATCH) {
            let copy = self.connection(report).await?;
            self.start(copy, rows, Vec::new(), target);
            self.wait_all(report).await?;
        }
        for copy in self.idle {
            copy.close().await;
        }
        Ok(())
    }

    fn start(
        &mut self,
        mut copy: CopyImport,
        rows: &[Row],
        addresses: Vec<String>,
        target: &Target<'_>,
    ) {
        let batch = encode(rows, target);
        let wording_id = target.wording_id.to_owned();
        let now = chrono::Utc::now().timestamp_millis();
        self.writing.spawn(async move {
            let written = copy.write(batch, &wording_id, now).await;
            Finished {
                copy,
                addresses,
                written,
            }
        });
    }

    /// An idle connection, a new one while fewer than [`WRITERS`] are
    /// open, or else the next to finish its batch.
    async fn connection(&mut self, report: &mut ImportReport) -> anyhow::Result<CopyImport> {
        if let Some(copy) = self.idle.pop() {
            return Ok(copy);
        }
        if self.opened < WRITERS {
            self.opened += 1;
            return CopyImport::open(self.store).await;
        }
        self.wait_one(report).await?;
        self.idle.pop().context("no batch was being written")
    }

    async fn wait_all(&mut self, report: &mut ImportReport) -> anyhow::Result<()> {
        while !self.writing.is_empty() {
            self.wait_one(report).await?;
        }
        Ok(())
    }

    /// Waits for the next batch to finish, counts it and frees its connection.
    async fn wait_one(&mut self, report: &mut ImportReport) -> anyhow::Result<()> {
        let Some(joined) = self.writing.join_next().await else {
            return Ok(());
        };
        let finished = joined.context("the task writing an import's batch failed")?;
        for address in &finished.addresses {
            self.held.remove(address);
        }
        let written = finished.written?;
        report.imported += written.inserted;
        report.existing += written.existing;
        report.suppressed += written.suppressed;
        self.idle.push(finished.copy);
        Ok(())
    }
}

/// The rows for COPY, each with its address's keyed hash: the server skips
/// the suppressed ones and counts them.
fn encode(rows: &[Row], target: &Target<'_>) -> EncodedBatch {
    let readers: Vec<StagedReader<'_>> = rows
        .iter()
        .map(|row| StagedReader {
            reader: imported(row),
            email_hash: suppression_hash(target.key, row.email.canonical()),
            detail: consent_detail(target.file_name, &row.source),
        })
        .collect();
    EncodedBatch::new(&readers)
}
