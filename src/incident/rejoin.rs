//! server-rejoin: a server that started (or left its role) and joined an ensemble that already
//! had a leader, without a new epoch forming: how it synced and how long it took.

use super::context::Context;
use super::defs::RejoinDef;
use super::failover::SYNC_KINDS;
use super::model::{Detail, Incident, IncidentKind, Rejoin as Joined};
use super::roles::STEP_DOWN_KINDS;
use super::steps::step;
use super::window::ts;
use super::{Detector, Findings, Needs};
use crate::event::Event;
use crate::time::rfc3339;

const MS: i64 = 1_000_000;

/// Lines a follower or observer logs when it loses its role.
const LEFT_KINDS: &[&str] = &[
    "follower.leader_lost",
    "observer.leader_lost",
    "election.looking",
];

/// The server-rejoin detector.
pub struct ServerRejoin {
    /// Its definition.
    pub def: RejoinDef,
}

impl Detector for ServerRejoin {
    fn kind(&self) -> IncidentKind {
        IncidentKind::ServerRejoin
    }

    fn needs(&self) -> Needs {
        Needs {
            kinds: ["election.took", "server.starting", "sync.uptodate"]
                .iter()
                .chain(STEP_DOWN_KINDS)
                .chain(LEFT_KINDS)
                .chain(SYNC_KINDS)
                .map(|k| k.to_string())
                .collect(),
            windowed: Vec::new(),
        }
    }

    fn detect<'e>(&self, cx: &Context<'e>, found: &mut Findings<'e>) {
        let def = &self.def;
        let margin = def.formation_margin_ms * MS;
        let mut attempts: Vec<Attempt<'e>> = Vec::new();
        for f in cx.ev.iter().copied().filter(|e| {
            &*e.kind == "election.took" && e.attrs.state.as_deref() == Some("following")
        }) {
            let t = ts(f);
            // Part of an election that formed a new epoch, unless it is a replaced leader that
            // follows only after the epoch formed without it (it was stalled).
            if cx
                .formed
                .iter()
                .any(|q| (ts(q) - t).abs() <= margin && !(t > ts(q) && cx.roles.stale(f, q)))
            {
                continue;
            }
            let mine: Vec<&Event> = cx.ev.iter().copied().filter(|e| e.node == f.node).collect();
            // Its previous election: a start before that is an earlier life of the server.
            let previous = mine
                .iter()
                .copied()
                .rfind(|e| &*e.kind == "election.took" && ts(e) < t)
                .map(ts)
                .unwrap_or(i64::MIN);
            let started = mine.iter().copied().rfind(|e| {
                &*e.kind == "server.starting"
                    && ts(e) > previous
                    && ts(e) <= t
                    && t - ts(e) <= def.max_start_ms * MS
            });
            // Not restarted: it left its previous role (a leader that lost its quorum, a
            // follower that lost its leader) and came back.
            let left = if started.is_none() {
                mine.iter().copied().find(|e| {
                    ts(e) > previous
                        && ts(e) <= t
                        && (STEP_DOWN_KINDS.contains(&&*e.kind) || LEFT_KINDS.contains(&&*e.kind))
                })
            } else {
                None
            };
            // Its sync and up-to-date lines, before it leaves again (a sync that broke off).
            let until = mine
                .iter()
                .copied()
                .find(|e| ts(e) > t && LEFT_KINDS.contains(&&*e.kind))
                .map_or(t + margin, |e| ts(e).min(t + margin));
            let sync = mine
                .iter()
                .copied()
                .find(|e| SYNC_KINDS.contains(&&*e.kind) && ts(e) >= t && ts(e) <= until);
            let uptodate = mine
                .iter()
                .copied()
                .find(|e| &*e.kind == "sync.uptodate" && ts(e) >= t && ts(e) <= until);
            let start = started.or(left).map(ts).unwrap_or(t);
            let end = uptodate.or(sync).map(ts).unwrap_or(t);
            let mut steps = Vec::new();
            if let Some(s) = started {
                steps.push(step(s, format!("{} starts", s.node)));
            }
            // A sync that broke off before the server was up to date, and the server left
            // again at once: that attempt and this one are one rejoin.
            let retry = left.and_then(|l| {
                attempts
                    .iter()
                    .rposition(|a| a.node == &*f.node)
                    .filter(|&i| !attempts[i].complete && ts(l) <= attempts[i].end + margin)
            });
            if let Some(l) = left {
                let what = if retry.is_some() {
                    "'s sync breaks off"
                } else {
                    " leaves its role"
                };
                steps.push(step(l, format!("{}{what}: {}", l.node, l.headline())));
            }
            steps.push(step(
                f,
                format!(
                    "{} finds the leader and follows ({} ms)",
                    f.node,
                    f.attrs.duration_ms.unwrap_or(0)
                ),
            ));
            let mut mode = None;
            if let Some(s) = sync {
                let m = s.kind.trim_start_matches("sync.").to_string();
                steps.push(step(s, format!("{} syncs by {}", s.node, m.to_uppercase())));
                mode = Some(m);
            }
            if let Some(u) = uptodate {
                steps.push(step(u, format!("{} is up to date", u.node)));
            }
            if let Some(open) = retry.map(|i| &mut attempts[i]) {
                open.incident.steps.extend(steps);
                open.end = end;
                open.complete = uptodate.is_some();
                open.incident.ended_at = rfc3339(end);
                if let Detail::ServerRejoin(j) = &mut open.incident.detail {
                    j.sync = mode.or(j.sync.take());
                }
                continue;
            }
            attempts.push(Attempt {
                node: &f.node,
                end,
                complete: uptodate.is_some(),
                incident: Incident {
                    id: format!(
                        "server-rejoin-{}-{}",
                        f.node,
                        &rfc3339(t)[11..19].replace(':', "")
                    ),
                    started_at: rfc3339(start),
                    ended_at: rfc3339(end),
                    steps,
                    detail: Detail::ServerRejoin(Joined {
                        server: f.node.to_string(),
                        election_ms: f.attrs.duration_ms,
                        sync: mode,
                    }),
                    start_ns: start,
                    ensemble: None,
                },
            });
        }
        found
            .rejoins
            .extend(attempts.into_iter().map(|a| a.incident));
    }
}

/// A rejoin being gathered: the server, when it ended so far, and whether it was up to date.
struct Attempt<'e> {
    node: &'e str,
    end: i64,
    complete: bool,
    incident: Incident,
}
