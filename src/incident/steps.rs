//! Building timeline steps from events, and the step every kind shares: a committed
//! closeSession.

use super::model::Step;
use crate::event::{hex_id, Event};
use crate::time::rfc3339;

/// The step an event is evidence of, with what happened in words.
pub fn step(e: &Event, summary: String) -> Step {
    Step {
        ts: e.ts.map(rfc3339).unwrap_or_default(),
        node: e.node.to_string(),
        kind: e.kind.to_string(),
        summary,
        evidence: format!("{}:{}", e.source, e.offset),
        at: e.ts.unwrap_or(0),
        session: e.attrs.session,
    }
}

/// The step for a committed closeSession txn (the arbiter of an expiry).
pub fn close_step(c: &Event, s: u64) -> Step {
    let deleted = if c.paths.is_empty() {
        String::new()
    } else {
        format!(": ephemerals deleted {}", c.paths.join(", "))
    };
    step(
        c,
        format!(
            "closeSession {} committed (zxid {}){deleted}",
            hex_id(s),
            c.attrs.zxid.map(hex_id).unwrap_or_default()
        ),
    )
}

/// A number, or `?` when it is not known.
pub fn unknown(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |x| x.to_string())
}

/// The kind of a service's role-change line.
pub use crate::recipe::SERVICE_ROLE;
