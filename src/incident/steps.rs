//! Building timeline steps from events, and the steps every kind shares: a committed
//! closeSession, a service's primary moving.

use super::model::{ServiceFailover, Step};
use super::window::{from, ts};
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
pub const SERVICE_ROLE: &str = "service.role";

/// A role-change line that makes its node the primary (leader, master) of its service.
fn is_primary(e: &Event) -> bool {
    e.attrs
        .state
        .as_deref()
        .map(str::to_ascii_lowercase)
        .is_some_and(|s| s.ends_with("primary") || s.ends_with("leader") || s.ends_with("master"))
}

/// Services whose primary moved to another node between `lo` and `hi` (inclusive), each with
/// the step that shows it.
pub fn service_failovers(ev: &[&Event], lo: i64, hi: i64) -> Vec<(ServiceFailover, Step)> {
    let mut out = Vec::new();
    for e in from(ev, lo)
        .iter()
        .copied()
        .take_while(|e| ts(e) <= hi)
        .filter(|e| &*e.kind == SERVICE_ROLE && is_primary(e))
    {
        let service = e.logger.as_deref().unwrap_or("service").to_string();
        // The previous primary of the same service: the last node before this that became it.
        let prev = ev
            .iter()
            .copied()
            .filter(|p| &*p.kind == SERVICE_ROLE && is_primary(p) && ts(p) < ts(e))
            .rfind(|p| p.logger.as_deref() == Some(service.as_str()))
            .map(|p| p.node.to_string());
        if prev.as_deref() == Some(&*e.node) {
            continue; // the same instance regained the role: no failover
        }
        let s = step(
            e,
            format!(
                "service {service}: primary moves {} -> {}",
                prev.as_deref().unwrap_or("?"),
                e.node
            ),
        );
        out.push((
            ServiceFailover {
                service,
                from: prev,
                to: e.node.to_string(),
                at: e.ts.map(rfc3339).unwrap_or_default(),
            },
            s,
        ));
    }
    out
}
