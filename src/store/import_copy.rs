//! Many readers at once on PostgreSQL (subscriber import): each batch goes
//! to the server with `COPY … FROM STDIN` into a temporary table, then one
//! statement writes the readers, accounts, consents and topics from it: the
//! server parses no JSON, and a batch is one COPY and one statement. The
//! pool's `Any` driver cannot COPY, so an import holds native connections
//! of its own (`import::copy` writes on a few at once), opened from the
//! store's URL and so in the same schema.

use anyhow::Context;
use sqlx::{Connection, PgConnection};

use super::{Store, copy_text::CopyText, import::ImportedReader};

/// A reader from an import file, with what the server needs to decide on it.
pub struct StagedReader<'a> {
    pub reader: ImportedReader<'a>,
    /// The keyed hash of the address: one on the suppression list is skipped.
    pub email_hash: String,
    /// Where the consent was given, kept as its `source_detail`.
    pub detail: String,
}

/// A batch in COPY's text format: made where the rows are, sent by
/// whichever of the import's connections is free.
pub struct EncodedBatch(Vec<u8>);

impl EncodedBatch {
    pub fn new(readers: &[StagedReader<'_>]) -> Self {
        Self(encode(readers))
    }
}

/// What one batch did; the three add up to its readers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    /// Addresses already known, left as they are.
    pub existing: u64,
    pub suppressed: u64,
}

/// A connection of one import's, with its staging table.
pub struct CopyImport {
    conn: PgConnection,
}

/// One row per reader of the batch. Temporary, so it is neither logged nor
/// seen by other sessions; `ON COMMIT DELETE ROWS` empties it at each
/// commit without making new files, as a TRUNCATE would. `n` is the row's
/// place in the batch: the first of two rows with one address wins.
const STAGING: &str = "CREATE TEMPORARY TABLE import_rows (
    n               BIGINT NOT NULL,
    id              TEXT NOT NULL,
    consent_id      TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_canonical TEXT NOT NULL,
    name            TEXT,
    consented_at    BIGINT NOT NULL,
    source_detail   TEXT NOT NULL,
    -- The reader's topics joined by ';', which a topic cannot hold (the
    -- file separates them with it); NULL for none.
    topics          TEXT,
    email_hash      TEXT NOT NULL
) ON COMMIT DELETE ROWS";

/// The staging table's columns, in the order `encode` writes them.
const COPY: &str = "COPY pg_temp.import_rows
    (n, id, consent_id, email, email_canonical, name, consented_at, source_detail, topics, email_hash)
    FROM STDIN";

/// The statements of `store::import`, as one: a suppressed address is
/// skipped, a known one left exactly as it is (a withdrawal stays a
/// withdrawal), and only the readers inserted get an account, a confirmed
/// digest consent and their topics. The inserts of the later parts are
/// checked against `subscribers` at the end of the statement, when the
/// readers inserted by its first part are there.
const WRITE: &str = "WITH checked AS (
    SELECT r.*, x.email_hash IS NOT NULL AS suppressed
    FROM pg_temp.import_rows r LEFT JOIN suppressions x ON x.email_hash = r.email_hash
), inserted AS (
    INSERT INTO subscribers (id, email, email_canonical, name, status, created_at, updated_at, confirmed_at)
    SELECT id, email, email_canonical, name, 'confirmed', $1, $1, consented_at
    FROM checked WHERE NOT suppressed ORDER BY n
    ON CONFLICT (email_canonical) DO NOTHING
    RETURNING id
), added AS (
    SELECT r.* FROM pg_temp.import_rows r JOIN inserted i ON i.id = r.id
), added_accounts AS (
    INSERT INTO accounts (subscriber_id, username, created_at)
    SELECT id, email_canonical, $1 FROM added
    ON CONFLICT DO NOTHING
), added_consents AS (
    INSERT INTO consent_events
      (id, subject_kind, subject, purpose, action, text_id, source, source_detail, created_at)
    SELECT consent_id, 'subscriber', id, 'newsletter', 'confirmed', $2, 'import', source_detail,
           consented_at
    FROM added
), added_topics AS (
    INSERT INTO preference_topics (subscriber_id, category)
    SELECT a.id, t.category
    FROM added a CROSS JOIN LATERAL unnest(string_to_array(a.topics, ';')) AS t (category)
    ON CONFLICT DO NOTHING
)
SELECT (SELECT COUNT(*) FROM inserted),
       (SELECT COUNT(*) FROM checked WHERE NOT suppressed) - (SELECT COUNT(*) FROM inserted),
       (SELECT COUNT(*) FROM checked WHERE suppressed)";

impl CopyImport {
    /// Connects to the store's PostgreSQL database and creates the staging table.
    pub async fn open(store: &Store) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(store.url.expose())
            .await
            .context("while connecting to PostgreSQL for the import")?;
        sqlx::query(STAGING)
            .execute(&mut conn)
            .await
            .context("while creating the import's staging table")?;
        Ok(Self { conn })
    }

    /// Writes one batch in a transaction of its own, with the rules of
    /// `store::import` (see `WRITE`). `now` dates the readers and their
    /// accounts.
    pub async fn write(
        &mut self,
        batch: EncodedBatch,
        wording_id: &str,
        now: i64,
    ) -> anyhow::Result<Written> {
        let EncodedBatch(rows) = batch;
        if rows.is_empty() {
            return Ok(Written::default());
        }
        let mut tx = self
            .conn
            .begin()
            .await
            .context("while starting an import transaction")?;
        let mut copy = tx
            .copy_in_raw(COPY)
            .await
            .context("while starting the import's COPY")?;
        copy.send(rows)
            .await
            .context("while sending the imported readers")?;
        copy.finish()
            .await
            .context("while staging the imported readers")?;
        let (inserted, existing, suppressed): (i64, i64, i64) = sqlx::query_as(WRITE)
            .bind(now)
            .bind(wording_id)
            .fetch_one(&mut *tx)
            .await
            .context("while importing readers")?;
        tx.commit()
            .await
            .context("while committing imported readers")?;
        Ok(Written {
            inserted: inserted as u64,
            existing: existing as u64,
            suppressed: suppressed as u64,
        })
    }

    pub async fn close(self) {
        self.conn.close().await.ok();
    }
}

/// The batch as COPY text, one row per reader in file order, each with a
/// new id for its consent event.
fn encode(readers: &[StagedReader<'_>]) -> Vec<u8> {
    // About 200 bytes a reader (two UUIDs, a 64-character hash, the address
    // twice), with room for a name and topics.
    let mut rows = CopyText::with_capacity(readers.len() * 256);
    for (n, staged) in (0_i64..).zip(readers) {
        let reader = &staged.reader;
        let topics = (!reader.topics.is_empty()).then(|| reader.topics.join(";"));
        rows.integer(n)
            .text(&reader.id)
            .text(&super::new_id())
            .text(reader.email)
            .text(reader.email_canonical)
            .optional(reader.name)
            .integer(reader.consented_at)
            .text(&staged.detail)
            .optional(topics.as_deref())
            .text(&staged.email_hash)
            .end_row();
    }
    rows.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged<'a>(name: Option<&'a str>, topics: &'a [String], detail: &str) -> StagedReader<'a> {
        StagedReader {
            reader: ImportedReader {
                id: "reader-id".into(),
                email: "Zoë@Exämple.ORG",
                email_canonical: "Zoë@xn--exmple-cua.org",
                name,
                topics,
                consented_at: 1_740_821_400_123,
            },
            email_hash: "hash".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn each_reader_is_one_row_in_the_order_of_the_copy_columns() {
        let topics = ["a,b".to_owned(), r"back\slash".to_owned()];
        let readers = [
            staged(Some("Zoë \"Z\""), &topics, "legacy.csv: fair\tstand"),
            staged(None, &[], "legacy.csv"),
        ];
        let text = String::from_utf8(encode(&readers)).expect("UTF-8");
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        let columns: Vec<&str> = COPY
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list.split(',').map(str::trim).collect())
            .expect("a column list");
        assert!(
            rows.iter().all(|row| row.len() == columns.len()),
            "{rows:?}"
        );
        let field = |row: &[&str], column: &str| {
            row[columns.iter().position(|c| *c == column).expect(column)].to_owned()
        };
        let first = &rows[0];
        assert_eq!(field(first, "n"), "0");
        assert_eq!(field(&rows[1], "n"), "1");
        assert_eq!(field(first, "id"), "reader-id");
        assert_eq!(field(first, "consent_id").len(), 36, "a new UUID");
        assert_eq!(field(first, "email"), "Zoë@Exämple.ORG");
        assert_eq!(field(first, "email_canonical"), "Zoë@xn--exmple-cua.org");
        assert_eq!(field(first, "name"), "Zoë \"Z\"");
        assert_eq!(field(&rows[1], "name"), r"\N");
        assert_eq!(field(first, "consented_at"), "1740821400123");
        assert_eq!(field(first, "source_detail"), r"legacy.csv: fair\tstand");
        assert_eq!(field(first, "topics"), r"a,b;back\\slash");
        assert_eq!(field(&rows[1], "topics"), r"\N", "no topics, no topic rows");
        assert_eq!(field(first, "email_hash"), "hash");
    }
}
