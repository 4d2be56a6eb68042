//! The typed event every source produces and every sink consumes.
//!
//! An [`Event`] is one log entry (a line, or a line plus its folded continuation lines such as a
//! Java stack trace), or later one transaction-log record. It carries where it came from (node,
//! source file, byte offset), what it says (level, thread, logger, message), what it *is* (a stable
//! dotted [`kind`](Event::kind) such as `election.leading` or `session.expired`) and the
//! identifiers that let zklens correlate it across nodes: session id, zxid, epoch, server ids.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Kind given to a line that no classification rule recognised. Such lines are still indexed.
pub const KIND_LOG: &str = "log";

/// The ensemble of events whose source names none (no `--ensemble`, no `ensemble=NAME` in the
/// path, no `ensemble` in the config).
pub const DEFAULT_ENSEMBLE: &str = "default";

/// The longest ensemble name accepted.
pub const MAX_ENSEMBLE_LEN: usize = 64;

/// Checks an ensemble name: 1 to [`MAX_ENSEMBLE_LEN`] bytes of ASCII letters, digits, `-`, `_`
/// and `.`, not starting with `.` (it becomes a directory name in the lake and part of incident
/// ids). The error says what is wrong.
pub fn check_ensemble_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_ENSEMBLE_LEN {
        return Err(format!(
            "ensemble name {name:?}: must be 1 to {MAX_ENSEMBLE_LEN} bytes"
        ));
    }
    if name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "ensemble name {name:?}: only ASCII letters, digits, '-', '_' and '.' (not first)"
        ));
    }
    Ok(())
}

/// The ensemble a path names: its nearest `ensemble=NAME` directory (Hive-style, as the lake
/// writes it) with a valid name ([`check_ensemble_name`]).
pub fn ensemble_in_path(path: &std::path::Path) -> Option<&str> {
    path.parent()?.components().rev().find_map(|c| {
        let name = c.as_os_str().to_str()?.strip_prefix("ensemble=")?;
        check_ensemble_name(name).ok().map(|_| name)
    })
}

/// The shared [`DEFAULT_ENSEMBLE`] name.
pub fn default_ensemble() -> Arc<str> {
    static NAME: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| Arc::from(DEFAULT_ENSEMBLE)).clone()
}

/// True for the [`DEFAULT_ENSEMBLE`] (left out of JSON output and of incident ids).
pub fn is_default_ensemble(name: &str) -> bool {
    name == DEFAULT_ENSEMBLE
}

/// Severity as written by the logger, normalised across logging frameworks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// TRACE / FINEST.
    Trace,
    /// DEBUG / FINE.
    Debug,
    /// INFO.
    Info,
    /// WARN / WARNING.
    Warn,
    /// ERROR / SEVERE.
    Error,
    /// FATAL / CRITICAL.
    Fatal,
}

impl Level {
    /// Parses a level as written by log4j, logback, Python logging, JSON loggers (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        let up = |a: &str| s.eq_ignore_ascii_case(a);
        Some(if up("INFO") || up("I") || up("INFORMATION") {
            Level::Info
        } else if up("WARN") || up("WARNING") || up("W") {
            Level::Warn
        } else if up("ERROR") || up("ERR") || up("E") || up("SEVERE") {
            Level::Error
        } else if up("DEBUG") || up("D") || up("FINE") {
            Level::Debug
        } else if up("TRACE") || up("T") || up("FINEST") || up("FINER") {
            Level::Trace
        } else if up("FATAL") || up("CRITICAL") || up("CRIT") || up("F") {
            Level::Fatal
        } else {
            return None;
        })
    }

    /// Canonical upper-case name (`INFO`, `WARN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifiers and measurements extracted from an entry by the classification rules.
///
/// Every field is optional; `epoch` is filled from `zxid >> 32` when the rule gave a zxid but no
/// explicit epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// ZooKeeper session id (64-bit; top byte = id of the server that created it).
    pub session: Option<u64>,
    /// ZooKeeper transaction id (high 32 bits = epoch, low 32 bits = counter).
    pub zxid: Option<u64>,
    /// Epoch: `zxid >> 32`, or an epoch stated by the line itself.
    pub epoch: Option<u64>,
    /// A server id the line is about (`n.sid`, a learner's sid, the writer's own myid).
    pub server: Option<u64>,
    /// A leader id the line names (`n.leader`, or the writer itself when it is LEADING).
    pub leader: Option<u64>,
    /// A peer address (`host:port`) the line names.
    pub peer: Option<String>,
    /// A znode path the line names.
    pub path: Option<String>,
    /// A duration in milliseconds (election time, connected-for, fsync time, ...).
    pub duration_ms: Option<u64>,
    /// A (session) timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// A state word (`looking`, `following - synchronization - diff`, `CONNECTED`, ...).
    pub state: Option<String>,
}

/// Applies `$op` to every optional attribute field of two `Attrs`.
macro_rules! each_attr {
    ($into:ident, $from:ident, $op:ident) => {
        $op!(
            $into,
            $from,
            session,
            zxid,
            epoch,
            server,
            leader,
            peer,
            path,
            duration_ms,
            timeout_ms,
            state
        )
    };
}

macro_rules! overlay_fields {
    ($into:ident, $from:ident, $($f:ident),*) => { $( if $from.$f.is_some() { $into.$f = $from.$f; } )* };
}

macro_rules! fill_fields {
    ($into:ident, $from:ident, $($f:ident),*) => { $( if $into.$f.is_none() { $into.$f = $from.$f; } )* };
}

impl Attrs {
    /// Takes every attribute `other` has (it wins over what is here).
    pub fn overlay(&mut self, other: Attrs) {
        let into = self;
        each_attr!(into, other, overlay_fields);
    }

    /// Takes the attributes of `other` that are still missing here.
    pub fn fill_missing(&mut self, other: Attrs) {
        let into = self;
        each_attr!(into, other, fill_fields);
    }

    /// Fills derived attributes (epoch from zxid) without overriding explicit ones.
    pub fn derive(&mut self) {
        if self.epoch.is_none() {
            if let Some(z) = self.zxid {
                self.epoch = Some(z >> 32);
            }
        }
    }
}

/// One log entry (or transaction record), normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UTC timestamp in nanoseconds since the Unix epoch, if the entry had one.
    pub ts: Option<i64>,
    /// The ZooKeeper ensemble the node belongs to ([`DEFAULT_ENSEMBLE`] unless its source named
    /// one): two ensembles' `zk1` are different nodes, and their zxids are unrelated.
    #[serde(
        default = "default_ensemble",
        skip_serializing_if = "is_default_ensemble_arc"
    )]
    pub ensemble: Arc<str>,
    /// Node that wrote it (`zk1`, `calc-a`).
    pub node: Arc<str>,
    /// The ZooKeeper server id (myid) of the writer, when known (from `[myid:N]` or the thread name).
    pub myid: Option<u64>,
    /// Source file (as given on the command line, or the URL of a pulled source).
    pub source: Arc<str>,
    /// Byte offset of the entry's first byte in the (decompressed) source.
    pub offset: u64,
    /// 1-based line number of the entry's first line in the source.
    pub line: u64,
    /// Severity.
    pub level: Option<Level>,
    /// Thread name.
    pub thread: Option<Arc<str>>,
    /// Logger / component (simple class name for log4j layouts).
    pub logger: Option<Arc<str>>,
    /// The message; continuation lines (stack traces) are appended after `\n`.
    pub message: String,
    /// Stable dotted kind (`session.expired`), or [`KIND_LOG`].
    pub kind: Arc<str>,
    /// Extracted identifiers.
    pub attrs: Attrs,
    /// Further znode paths the event concerns (the ephemerals a `closeSession` deleted, the
    /// paths of a `multi`'s sub-operations).
    pub paths: Vec<String>,
    /// For a transaction record: every server whose log holds it (the event is indexed once per
    /// ensemble; `node` is the first of these).
    pub replicas: Vec<Arc<str>>,
}

impl Event {
    /// The first line of the message (without folded continuation lines).
    pub fn headline(&self) -> &str {
        self.message.split('\n').next().unwrap_or("")
    }
}

/// `events` split by ensemble, in name order, when they come from more than one (None: they are
/// all one ensemble's, and need no copy).
pub fn split_ensembles(events: &[Event]) -> Option<Vec<(Arc<str>, Vec<Event>)>> {
    let first = &events.first()?.ensemble;
    if events.iter().all(|e| e.ensemble == *first) {
        return None;
    }
    let mut parts: Vec<(Arc<str>, Vec<Event>)> = Vec::new();
    for e in events {
        match parts.iter_mut().find(|p| p.0 == e.ensemble) {
            Some(p) => p.1.push(e.clone()),
            None => parts.push((e.ensemble.clone(), vec![e.clone()])),
        }
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    Some(parts)
}

/// The ensemble `events` are in when it is a named one (they are one ensemble's, see
/// [`split_ensembles`]).
pub fn named_ensemble(events: &[Event]) -> Option<String> {
    events
        .first()
        .map(|e| &e.ensemble)
        .filter(|e| !is_default_ensemble(e))
        .map(|e| e.to_string())
}

fn is_default_ensemble_arc(name: &Arc<str>) -> bool {
    is_default_ensemble(name)
}

/// Formats an id the way ZooKeeper prints it: `0x` followed by lower-case hex, no padding.
pub fn hex_id(v: u64) -> String {
    format!("0x{v:x}")
}

/// Parses a session id or zxid given by a user: `0x`-prefixed hex, bare hex with a letter in it,
/// or decimal.
pub fn parse_id(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u64::from_str_radix(s, 16).ok();
    }
    None
}

/// FNV-1a, 64-bit: stable across builds, runs and platforms (std's hasher is not), for what
/// must come out the same every time: fingerprints, file names, trace ids.
pub fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The server id encoded in a session id's top byte (the server that created the session).
pub fn session_origin(session: u64) -> u64 {
    session >> 56
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_hex_and_decimal() {
        assert_eq!(parse_id("0x100000012"), Some(0x1_0000_0012));
        assert_eq!(parse_id("4294967314"), Some(0x1_0000_0012));
        assert_eq!(parse_id("3000002f45e0000"), Some(0x3000002f45e0000));
        assert_eq!(parse_id("zz"), None);
        assert_eq!(hex_id(0x3000002f45e0000), "0x3000002f45e0000");
        assert_eq!(session_origin(0x3000002f45e0000), 3);
    }

    #[test]
    fn levels_normalise() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("info "), Some(Level::Info));
        assert_eq!(Level::parse("SEVERE"), Some(Level::Error));
        assert_eq!(Level::parse("chatty"), None);
    }

    #[test]
    fn epoch_derives_from_zxid() {
        let mut a = Attrs {
            zxid: Some(0x2_0000_0005),
            ..Attrs::default()
        };
        a.derive();
        assert_eq!(a.epoch, Some(2));
    }
}
