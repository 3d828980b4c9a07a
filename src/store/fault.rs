//! What a database error means for the request, or the transaction, that
//! met it: the one place that reads sqlx's error codes.

/// What a database error says about the request that met it, when it says
/// more than "our fault" (a 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database could not be reached, or stayed busy past the wait: a
    /// SQLite file locked by another process, a PostgreSQL server gone away
    /// or restarting, a connection cut mid-way. The request may succeed a
    /// little later: 503.
    Unavailable,
    /// PostgreSQL refused text it cannot store (a NUL byte, 22021). The
    /// request carried it: 400. SQLite stores it, and each field's checks
    /// decide.
    UnstorableText,
}

pub fn fault(error: &anyhow::Error) -> Option<Fault> {
    error.chain().find_map(|cause| {
        if let Some(shared) = cause.downcast_ref::<SharedFailure>() {
            return shared.fault;
        }
        match cause.downcast_ref::<sqlx::Error>()? {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => Some(Fault::Unavailable),
            sqlx::Error::Database(database) if database.code().as_deref() == Some("22021") => {
                Some(Fault::UnstorableText)
            }
            sqlx::Error::Database(database) => {
                is_unavailable_code(database.as_ref()).then_some(Fault::Unavailable)
            }
            _ => None,
        }
    })
}

/// One database error answered to several requests at once (the group
/// transaction of many signups that could not start): its text and its
/// [`Fault`], since the error itself cannot be cloned. [`fault`] reads it
/// as it would the original, so each request gets the same page.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SharedFailure {
    message: String,
    fault: Option<Fault>,
}

impl SharedFailure {
    pub fn of(error: &anyhow::Error) -> Self {
        Self {
            message: crate::telemetry::error_text(error),
            fault: fault(error),
        }
    }
}

fn is_unavailable_code(error: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        code.parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
    } else {
        // Connection exceptions, shutdowns, "cannot connect now" (starting
        // up) and too many connections.
        code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
    }
}
