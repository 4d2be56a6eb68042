//! Servers' roles over time: who led, who was elected or restarted when, and whether a line
//! comes from a leader that had already been replaced.

use std::collections::BTreeMap;

use crate::event::Event;

/// Kinds that decide a server's role: elected (leading, following, observing) or restarted.
pub const ROLE_KINDS: &[&str] = &[
    "election.took",
    "election.leading",
    "election.following",
    "election.observing",
    "server.starting",
];

/// Leader-side kinds a leader logs when it finds itself without a quorum.
pub const STEP_DOWN_KINDS: &[&str] = &["quorum.lost", "quorum.wait_failed", "leader.shutdown"];

/// The leader a line names or is written by: its writer's myid, the leader id it names, or the
/// number in its node's name.
pub fn leader_of(e: &Event) -> Option<u64> {
    e.myid.or(e.attrs.leader).or_else(|| {
        e.node
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    })
}

/// Each server's role decisions in time order: (time, leading?).
pub struct Roles<'a> {
    by_node: BTreeMap<&'a str, Vec<(i64, bool)>>,
}

impl<'a> Roles<'a> {
    /// The role decisions among `ev` (in time order).
    pub fn new(ev: &[&'a Event]) -> Roles<'a> {
        let mut by_node: BTreeMap<&'a str, Vec<(i64, bool)>> = BTreeMap::new();
        for e in ev.iter().filter(|e| ROLE_KINDS.contains(&&*e.kind)) {
            let leading =
                &*e.kind != "server.starting" && e.attrs.state.as_deref() == Some("leading");
            by_node
                .entry(&*e.node)
                .or_default()
                .push((e.ts.unwrap_or(0), leading));
        }
        Roles { by_node }
    }

    /// The role `node` last took before `t`.
    fn before(&self, node: &str, t: i64) -> Option<(i64, bool)> {
        let r = self.by_node.get(node)?;
        let i = r.partition_point(|(x, _)| *x < t);
        i.checked_sub(1).and_then(|i| r.get(i)).copied()
    }

    /// `e` comes from a server that still acts as the leader of an epoch older than the one
    /// `formed` (a quorum.formed, logged by its leader) established: it led before and has not
    /// been elected or restarted since.
    pub fn stale(&self, e: &Event, formed: &Event) -> bool {
        let t0 = formed.ts.unwrap_or(0);
        e.node != formed.node
            && self
                .before(&e.node, e.ts.unwrap_or(0))
                .is_some_and(|(t, leading)| leading && t < t0)
    }
}
