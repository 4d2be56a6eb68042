//! The library's error type. Every error that concerns input names the file (and, where it makes
//! sense, the byte offset) it came from.

use std::path::PathBuf;

/// Errors raised by the zklens library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Input that cannot be read as what it claims to be.
    #[error("{path}: at byte offset {offset}: {reason}")]
    BadInput {
        /// The file concerned.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A log-format or rule definition is invalid.
    #[error("format definition {origin}: {reason}")]
    Format {
        /// Where the definition came from (file path or `embedded:NAME`).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A query string could not be parsed.
    #[error("query: {0}")]
    Query(String),
    /// A time expression could not be parsed.
    #[error("time: {0}")]
    Time(String),
    /// An error from the index.
    #[error("index {path}: {reason}")]
    Index {
        /// The data directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The event store is damaged.
    #[error("event store {path}: at byte offset {offset}: {reason}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// Offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A sink failed to take events (the index, a printer); the source that was being read
    /// stopped there.
    #[error("{0}")]
    Sink(Box<Error>),
    /// A checkpoint delta did not start where its source stands (a duplicate or a gap).
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::DeltaMismatch),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
