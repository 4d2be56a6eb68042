//! What the application layer answers: one type per question, produced by [`super`]'s functions
//! against an index, serialized by the HTTP API and deserialized by the CLI's `--server`
//! client, so a local and a remote answer are the same value and print the same way.

use serde::{Deserialize, Serialize};

use crate::event::{hex_id, Event};
use crate::incident::Incident;
use crate::time::Tz;

/// What the query commands ask besides the query itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The time window.
    pub window: Window,
    /// At most this many events (the first in time order); None: all.
    pub limit: Option<usize>,
    /// Only count.
    pub count: bool,
    /// Limits a running service imposes on the answer (none from the CLI).
    pub budget: Budget,
}

/// What one answer may cost: a service sets these from its configuration so that no request
/// can hold the machine (the CLI asks for everything it is told to).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// Past this instant the work stops (checked between steps: compiling, searching, each
    /// run of events read) and fails with [`crate::error::Error::Budget`].
    pub deadline: Option<std::time::Instant>,
    /// At most about this many bytes of events (their text, [`super::event_bytes`]): the
    /// answer stops before the event that would pass it and says so (`truncated`).
    pub max_bytes: Option<usize>,
}

/// A time window, as written (absolute, or relative to now: `15m`), with the zone its zone-less
/// times are read in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Lower bound (inclusive).
    pub since: Option<String>,
    /// Upper bound (exclusive).
    pub until: Option<String>,
    /// The zone of zone-less times (in the bounds and in the query's own times).
    pub tz: Tz,
}

/// What a search found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// Number of matching events.
    pub total: usize,
    /// The events returned (time order; `limit` of them).
    pub events: Vec<Event>,
    /// The answer holds fewer events than were asked for because a service's budget cut it
    /// (its `max_events` or `max_answer_bytes`), not because of `limit`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One session's events, with its life summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionAnswer {
    /// The session id (`0x` hex).
    pub session: String,
    /// Its lifecycle (created, ephemerals, connections, expiry, end), over all its events
    /// whatever the window; None when only counting.
    pub summary: Option<String>,
    /// The events.
    #[serde(flatten)]
    pub found: Found,
}

/// One transaction's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZxidAnswer {
    /// The zxid (`0x` hex).
    pub zxid: String,
    /// Its epoch (the high 32 bits).
    pub epoch: u64,
    /// Its counter within the epoch (the low 32 bits).
    pub counter: u64,
    /// The events.
    #[serde(flatten)]
    pub found: Found,
}

impl ZxidAnswer {
    /// An answer for `zxid` holding `found`.
    pub fn new(zxid: u64, found: Found) -> ZxidAnswer {
        ZxidAnswer {
            zxid: hex_id(zxid),
            epoch: zxid >> 32,
            counter: zxid & 0xffff_ffff,
            found,
        }
    }
}

/// An incident in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEntry {
    /// When a running service first recognised it (RFC 3339); None from the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<String>,
    /// One-line summary.
    pub summary: String,
    /// The incident.
    pub incident: Incident,
}

/// One incident with its post-mortem text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    /// When a running service first recognised it (RFC 3339); None from the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<String>,
    /// One-line summary.
    pub summary: String,
    /// The timeline, one line per step with its evidence, clock-corrected where skew is known.
    pub text: String,
    /// The incident.
    pub incident: Incident,
}

/// What the index holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Indexed {
    /// Events indexed.
    pub events: u64,
    /// Every source read into it, and how far.
    pub sources: Vec<IndexedSource>,
}

/// One source in the index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexedSource {
    /// The node its events are attributed to.
    pub node: String,
    /// The format it was read as.
    pub format: String,
    /// Events indexed from it.
    pub events: u64,
    /// Bytes read (the offset of the next unread byte).
    pub offset: u64,
    /// Path or URL.
    pub path: String,
    /// How much of its entries was understood (text sources indexed since it is counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::checkpoint::Coverage>,
}
