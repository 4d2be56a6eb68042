//! The library's error type. Every error that concerns input names the file (and, where it makes
//! sense, the byte offset) it came from.

use std::path::PathBuf;

/// Errors raised by the zklens library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file. Its message holds the cause, so the cause is not also
    /// its [`source`](std::error::Error::source): a chain printed whole (`anyhow`'s `{:#}`)
    /// names it once. [`Error::io_error`] gives it to code.
    #[error("{path}: {error}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
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
    /// A file's node could not be named (a `--node-from` pattern that does not match its path).
    #[error("{path}: {reason}")]
    NodeName {
        /// The file concerned.
        path: PathBuf,
        /// Why it has no name.
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
    /// A request parameter is not what it should be (an id that is no id, a bad zone).
    #[error("{0}")]
    Param(String),
    /// What was asked for does not exist (an incident id nobody knows).
    #[error("{0}")]
    NotFound(String),
    /// There is no index in the data directory yet.
    #[error("index {}: no index here (run `zklens ingest` first, or pass --data-dir)", .path.display())]
    NoIndex {
        /// The data directory.
        path: PathBuf,
    },
    /// A thread, the async runtime or the HTTP server failed (not the caller's fault).
    #[error("{0}")]
    Internal(String),
    /// The service's address could not be listened on (the cause in the message, as
    /// [`Error::Io`]).
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A running service (`--server`) could not be asked, or refused the question.
    #[error("{url}: {}", remote_message(*.status, .message))]
    Remote {
        /// The URL asked.
        url: String,
        /// The HTTP status it answered with (None: no answer, or no usable one).
        status: Option<u16>,
        /// What went wrong (the service's own message for an HTTP error).
        message: String,
    },
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
    #[error("checkpoint of {key}: the batch starts at {from}, but the source stands at {stands} (a duplicate or a gap)")]
    Checkpoint {
        /// The source.
        key: String,
        /// Where the delta starts.
        from: String,
        /// Where the committed set says the source stands.
        stands: String,
    },
    /// A request body that cannot be read as what its headers claim (an OTLP export that is
    /// not protobuf or JSON, a compressed body past its limit): the sender's fault.
    #[error("{what}: at byte offset {offset}: {reason}")]
    BadRequest {
        /// The request (`POST /v1/logs`).
        what: String,
        /// Byte offset in the (decompressed) body, where known, else 0.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A request went past a budget of the service (its time budget, or too many requests
    /// at once): the service is fine, the request was given up.
    #[error("{0}")]
    Budget(String),
    /// A request that does not follow on from what the service holds (a shipper sending past
    /// a gap the service never received): nothing of it was taken; the shipper resends from
    /// the service's checkpoint.
    #[error("{0}")]
    Conflict(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// The I/O error underneath, when this is one (through a sink's wrapping): its kind tells a
    /// closed pipe from a failure.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io { error, .. } | Error::Listen { error, .. } => Some(error),
            Error::Sink(inner) => inner.io_error(),
            _ => None,
        }
    }

    /// The HTTP status that answers a request failing with this error: the caller's mistake
    /// (a bad query, time or parameter) is 400, an unknown incident or id 404, no index yet 503,
    /// a budget of the service exhausted 503 as well, a service asked in turn that failed 502, everything else (I/O, a damaged index, a thread)
    /// 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Query(_)
            | Error::Time(_)
            | Error::Param(_)
            | Error::NodeName { .. }
            | Error::BadRequest { .. } => 400,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::NoIndex { .. } | Error::Budget(_) => 503,
            Error::Sink(inner) => inner.http_status(),
            Error::Remote { .. } => 502,
            Error::Io { .. }
            | Error::BadInput { .. }
            | Error::Format { .. }
            | Error::Index { .. }
            | Error::Store { .. }
            | Error::Internal(_)
            | Error::Checkpoint { .. }
            | Error::Listen { .. } => 500,
        }
    }
}

fn remote_message(status: Option<u16>, message: &str) -> String {
    match status {
        Some(s) => format!("HTTP {s}: {message}"),
        None => message.to_string(),
    }
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_http_status() {
        let io = || std::io::Error::other("x");
        let cases = [
            (Error::Query("bad".into()), 400),
            (Error::Time("bad".into()), 400),
            (Error::Param("bad".into()), 400),
            (Error::NotFound("none".into()), 404),
            (Error::NoIndex { path: "d".into() }, 503),
            (Error::Budget("too long".into()), 503),
            (
                Error::Remote {
                    url: "u".into(),
                    status: Some(500),
                    message: "m".into(),
                },
                502,
            ),
            (Error::io("f", io()), 500),
            (
                Error::Index {
                    path: "d".into(),
                    reason: "r".into(),
                },
                500,
            ),
            (
                Error::Store {
                    path: "s".into(),
                    offset: 1,
                    reason: "r".into(),
                },
                500,
            ),
            (
                Error::Format {
                    origin: "o".into(),
                    reason: "r".into(),
                },
                500,
            ),
            (Error::Internal("the index writer panicked".into()), 500),
            (
                Error::Listen {
                    addr: "127.0.0.1:1".into(),
                    error: io(),
                },
                500,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.http_status(), want, "{e:?}");
        }
    }

    #[test]
    fn messages_keep_their_wording() {
        assert_eq!(
            Error::NoIndex { path: "/d".into() }.to_string(),
            "index /d: no index here (run `zklens ingest` first, or pass --data-dir)"
        );
        let r = Error::Remote {
            url: "http://h/api/x".into(),
            status: Some(404),
            message: "no incident \"x\"".into(),
        };
        assert_eq!(r.to_string(), "http://h/api/x: HTTP 404: no incident \"x\"");
    }

    /// Regression: the cause was both in the message and the error's source, so a chain
    /// printed whole named it twice.
    #[test]
    fn an_io_error_names_its_cause_once_in_a_chain() {
        use std::error::Error as _;
        let e = Error::io("/x", std::io::Error::from(std::io::ErrorKind::NotFound));
        // The chain as `anyhow`'s `{:#}` prints it: each error's message, then its source's.
        let mut shown = e.to_string();
        let mut next = e.source();
        while let Some(c) = next {
            shown = format!("{shown}: {c}");
            next = c.source();
        }
        assert_eq!(shown, "/x: entity not found");
        let sunk = Error::Sink(Box::new(Error::io(
            "<stdout>",
            std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        )));
        assert_eq!(
            sunk.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::BrokenPipe)
        );
    }
}
