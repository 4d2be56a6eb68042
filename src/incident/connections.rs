//! Client connections: which server each session was connected to when, and the sessions that
//! moved to another server in a window.

use std::collections::{HashMap, HashSet};

use super::model::{SessionMove, Step};
use super::steps::step;
use super::window::{from, ts};
use crate::event::{hex_id, Event};
use crate::time::rfc3339;

/// The kind of a client's connection line (naming the session and the server).
pub const CONNECTED: &str = "client.connected";

/// Each session's client connections that name a server, in time order: (time, server).
pub type Connections<'a> = HashMap<u64, Vec<(i64, &'a str)>>;

/// The connections among `ev` (in time order).
pub fn connections<'a>(ev: &[&'a Event]) -> Connections<'a> {
    let mut out = Connections::new();
    for e in ev.iter().filter(|e| &*e.kind == CONNECTED) {
        if let (Some(s), Some(peer), Some(t)) = (e.attrs.session, e.attrs.peer.as_deref(), e.ts) {
            out.entry(s).or_default().push((t, peer));
        }
    }
    out
}

/// Client sessions whose connection moved to another server between `lo` and `hi`: each with
/// the step that shows it.
pub fn sessions_moved(
    ev: &[&Event],
    conns: &Connections<'_>,
    lo: i64,
    hi: i64,
) -> Vec<(SessionMove, Step)> {
    let mut out = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    for e in from(ev, lo)
        .iter()
        .copied()
        .take_while(|e| ts(e) <= hi)
        .filter(|e| &*e.kind == CONNECTED && e.attrs.session.is_some())
    {
        let (Some(s), Some(peer)) = (e.attrs.session, e.attrs.peer.as_deref()) else {
            continue;
        };
        if seen.contains(&s) {
            continue;
        }
        // The session's server before the window: its last connection before `lo`.
        let before = conns.get(&s).and_then(|list| {
            let n = list.partition_point(|c| c.0 < lo);
            n.checked_sub(1).map(|i| list[i].1)
        });
        if let Some(prev) = before {
            if prev != peer {
                seen.insert(s);
                out.push((
                    SessionMove {
                        session: hex_id(s),
                        client: e.node.to_string(),
                        from: prev.to_string(),
                        to: peer.to_string(),
                        at: e.ts.map(rfc3339).unwrap_or_default(),
                    },
                    step(
                        e,
                        format!(
                            "{} session {} moves {} -> {}",
                            e.node,
                            hex_id(s),
                            prev,
                            peer
                        ),
                    ),
                ));
            }
        }
    }
    out
}
