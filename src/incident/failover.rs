//! leader-failover: a new epoch formed after the leader of the previous one was lost. Gathered
//! around it: each server's election, each follower's sync, the sessions the new leader expired
//! because they could not come back in time (with their ephemerals), the services whose primary
//! moved, the client sessions that reconnected elsewhere, and, when the old leader had only
//! stalled, it resuming, stepping down and following.

use std::sync::Arc;

use super::connections::{sessions_moved, CONNECTED};
use super::context::{Context, EXPIRED};
use super::defs::FailoverDef;
use super::model::{Detail, Failover, Incident, IncidentKind, Leadership};
use super::roles::{leader_of, STEP_DOWN_KINDS};
use super::steps::{close_step, step, unknown, SERVICE_ROLE};
use super::window::{before, span, ts};
use super::{Detector, FailoverFinding, Findings, Needs};
use crate::event::{hex_id, Event};
use crate::time::rfc3339;

const MS: i64 = 1_000_000;

/// The sync modes a follower logs.
pub(crate) const SYNC_KINDS: &[&str] = &["sync.diff", "sync.snap", "sync.trunc"];

/// The leader-failover detector.
pub struct LeaderFailover {
    /// Its definition.
    pub def: FailoverDef,
}

impl Detector for LeaderFailover {
    fn kind(&self) -> IncidentKind {
        IncidentKind::LeaderFailover
    }

    fn needs(&self) -> Needs {
        // Every line a server logs about its role, as a whole: an old leader that stalled is
        // "heard from again" at the first of them it writes after the new epoch formed.
        let mut kinds: Vec<String> = [
            "election.*",
            "quorum.*",
            "follower.*",
            "observer.*",
            "leader.*",
            "learner.lost",
            "sync.uptodate",
            EXPIRED,
            SERVICE_ROLE,
        ]
        .iter()
        .chain(SYNC_KINDS)
        .chain(STEP_DOWN_KINDS)
        .map(|k| k.to_string())
        .collect();
        kinds.extend(self.def.loss_kinds.iter().cloned());
        Needs {
            kinds,
            windowed: vec![CONNECTED.to_string()],
        }
    }

    fn detect<'e>(&self, cx: &Context<'e>, found: &mut Findings<'e>) {
        let d = &self.def;
        let ev = &cx.ev;
        // Logs that begin inside an epoch hold no formation of it; a stand-in opens the chain.
        let unseen = unseen_epoch(ev, &cx.formed, d);
        for (i, &cur) in cx.formed.iter().enumerate() {
            let prev: &Event = match i.checked_sub(1) {
                Some(j) => cx.formed[j],
                None => match &unseen {
                    Some(u) => u,
                    None => continue,
                },
            };
            let (Some(z0), Some(z1)) = (prev.attrs.zxid, cur.attrs.zxid) else {
                continue;
            };
            let (e0, e1) = (z0 >> 32, z1 >> 32);
            if e1 <= e0 {
                continue;
            }
            // A leader of an earlier epoch that stalled (SIGSTOP, a long GC pause) logs the loss
            // of its quorum when it resumes, after this epoch formed: not a loss of this
            // epoch's leader.
            let between: Vec<&'e Event> = span(ev, ts(prev).saturating_add(1), ts(cur))
                .iter()
                .copied()
                .filter(|e| !cx.roles.stale(e, prev))
                .collect();
            // A follower up to date with the old leader well before this epoch formed shows
            // that leader still leading: a loss before it was a blip (a rejoin whose first sync
            // broke off, a dropped connection, the leader's goodbye to that learner).
            let back_by = ts(cur) - d.election_window_ms * MS;
            let still_led = between
                .iter()
                .rev()
                .find(|u| &*u.kind == "sync.uptodate" && ts(u) <= back_by)
                .map_or(i64::MIN, |u| ts(u));
            let blip = |e: &Event| ts(e) <= still_led;
            let loss = between
                .iter()
                .find(|e| d.loss_kinds.iter().any(|k| k == &*e.kind) && !blip(e))
                .or_else(|| {
                    between
                        .iter()
                        .find(|e| &*e.kind == "election.looking" && !blip(e))
                })
                .copied();
            let Some(loss) = loss else { continue };
            let incident = self.failover(cx, prev, cur, loss, &mut found.explained);
            found.failovers.push(FailoverFinding {
                incident,
                between,
                loss,
                formed: cur,
                quorum_loss: None,
            });
        }
    }
}

impl LeaderFailover {
    /// The failover from `prev`'s epoch to `cur`'s, which began at `loss`. Sessions whose
    /// expiry it explains are added to `explained`.
    fn failover(
        &self,
        cx: &Context<'_>,
        prev: &Event,
        cur: &Event,
        loss: &Event,
        explained: &mut Vec<u64>,
    ) -> Incident {
        let d = &self.def;
        let ev = &cx.ev;
        let (e0, e1) = (
            prev.attrs.zxid.unwrap_or(0) >> 32,
            cur.attrs.zxid.unwrap_or(0) >> 32,
        );
        let start = ts(loss);
        let formed_at = ts(cur);
        let mut f = Failover {
            change: Leadership {
                old_leader: leader_of(prev),
                new_leader: leader_of(cur),
                old_epoch: Some(e0),
                new_epoch: Some(e1),
            },
            ..Failover::default()
        };
        let mut steps = vec![step(
            loss,
            format!(
                "leader zk{} lost: {}",
                unknown(f.change.old_leader),
                loss.headline()
            ),
        )];
        let mut end = formed_at;
        let mut looking: Vec<&str> = Vec::new();
        for e in span(ev, start, formed_at + d.steps_window_ms * MS)
            .iter()
            .copied()
        {
            match &*e.kind {
                "election.looking"
                    if ts(e) <= formed_at
                        && !looking.contains(&&*e.node)
                        && !cx.roles.stale(e, prev) =>
                {
                    looking.push(&e.node);
                    steps.push(step(e, format!("{} LOOKING", e.node)));
                }
                "election.took" if ts(e) <= formed_at + d.election_window_ms * MS => {
                    if let Some(ms) = e.attrs.duration_ms {
                        f.election_ms.insert(e.node.to_string(), ms);
                    }
                    steps.push(step(
                        e,
                        format!(
                            "{} {} after a {} ms election",
                            e.node,
                            e.attrs.state.as_deref().unwrap_or("decided").to_uppercase(),
                            e.attrs.duration_ms.unwrap_or(0)
                        ),
                    ));
                    end = end.max(ts(e));
                }
                k if SYNC_KINDS.contains(&k)
                    && ts(e) <= formed_at + d.sync_window_ms * MS
                    && e.myid != f.change.new_leader =>
                {
                    let mode = e.kind.trim_start_matches("sync.").to_string();
                    f.sync.insert(e.node.to_string(), mode.clone());
                    steps.push(step(
                        e,
                        format!(
                            "{} syncs with the new leader by {}",
                            e.node,
                            mode.to_uppercase()
                        ),
                    ));
                    end = end.max(ts(e));
                }
                _ => {}
            }
        }
        steps.push(step(
            cur,
            format!(
                "zk{} leads epoch {} with a quorum",
                unknown(f.change.new_leader),
                e1
            ),
        ));
        let next_formed = cx
            .formed
            .iter()
            .map(|f| ts(f))
            .find(|&t| t > formed_at)
            .unwrap_or(i64::MAX);
        end = end.max(self.old_leader_steps_down(cx, prev, cur, next_formed, &mut f, &mut steps));
        // Sessions the new leader expired because they could not come back in time.
        for e in span(ev, start, i64::MAX)
            .iter()
            .copied()
            .filter(|e| &*e.kind == EXPIRED && !cx.stale(e))
        {
            let Some(s) = e.attrs.session else { continue };
            let timeout = e
                .attrs
                .timeout_ms
                .or_else(|| cx.timeouts.get(&s).copied())
                .unwrap_or(0);
            let limit =
                formed_at + ((timeout as f64 * d.expiry_factor) as i64 + d.expiry_slack_ms) * MS;
            if ts(e) > limit {
                break;
            }
            explained.push(s);
            f.sessions_expired.push(hex_id(s));
            steps.push(step(
                e,
                format!(
                    "{} expires session {} (timeout {} ms)",
                    e.node,
                    hex_id(s),
                    timeout
                ),
            ));
            end = end.max(ts(e));
            match cx.closes.get(&s) {
                Some(c) => {
                    f.ephemerals_lost.extend(c.paths.iter().cloned());
                    steps.push(close_step(c, s));
                }
                None => f.unconfirmed.push(format!(
                    "expiry of {} is logged by {} but no closeSession txn for it is indexed (ingest the txn logs to confirm)",
                    hex_id(s),
                    e.node
                )),
            }
        }
        let until = formed_at + d.service_window_ms * MS;
        let mine: Vec<u64> = f
            .sessions_expired
            .iter()
            .filter_map(|s| crate::event::parse_id(s))
            .collect();
        let svc = cx.services.between(start, until, &mine, false);
        for st in svc.steps {
            end = end.max(st.at);
            steps.push(st);
        }
        f.service_failovers = svc.failovers;
        f.warnings = svc.warnings;
        for (m, st) in sessions_moved(ev, &cx.conns, start, until) {
            f.sessions_moved.push(m);
            steps.push(st);
        }
        steps.sort_by_key(|s| s.at);
        end = end.max(steps.last().map(|s| s.at).unwrap_or(end));
        Incident {
            id: format!("leader-failover-epoch-{e1}"),
            started_at: rfc3339(start),
            ended_at: rfc3339(end),
            steps,
            detail: Detail::LeaderFailover(f),
            start_ns: start,
            ensemble: None,
        }
    }

    /// A failed-over leader (`prev`'s node) that did not die (it stalled: SIGSTOP, GC, a frozen
    /// disk) resumes after the new epoch (`cur`) formed, finds it has no quorum, steps down and
    /// follows the new leader: its step-down, the expiries it logged meanwhile, its rejoin and
    /// how it synced, as steps of the failover. Returns the last step's time (0 when the old
    /// leader logged no step-down before the next formation).
    fn old_leader_steps_down(
        &self,
        cx: &Context<'_>,
        prev: &Event,
        cur: &Event,
        next_formed: i64,
        f: &mut Failover,
        steps: &mut Vec<super::model::Step>,
    ) -> i64 {
        let formed_at = ts(cur);
        let node = &*prev.node;
        let after = span(
            &cx.ev,
            formed_at.saturating_add(1),
            next_formed.saturating_sub(1),
        );
        let mine = || after.iter().copied().filter(move |e| &*e.node == node);
        let Some(down) =
            mine().find(|e| STEP_DOWN_KINDS.contains(&&*e.kind) && cx.roles.stale(e, cur))
        else {
            return 0;
        };
        let new_epoch = f.change.new_epoch.unwrap_or(0);
        // Its first line after the new epoch formed: it was silent (stalled) until then.
        if let Some(back) = mine().next().filter(|b| ts(b) < ts(down)) {
            steps.push(step(
                back,
                format!(
                    "{node} (the old leader) is heard from again: {}",
                    back.headline()
                ),
            ));
        }
        steps.push(step(
            down,
            format!(
                "{node} (the old leader) finds it has no quorum and steps down: {}",
                down.headline()
            ),
        ));
        let mut end = ts(down);
        let follows = mine().find(|e| {
            &*e.kind == "election.took"
                && ts(e) >= ts(down)
                && e.attrs.state.as_deref() == Some("following")
        });
        // Sessions it expired on resume, as if no time had passed for them: proposals of an
        // epoch that was over, which no quorum committed.
        for x in mine().filter(|e| {
            &*e.kind == EXPIRED && cx.roles.stale(e, cur) && follows.is_none_or(|f| ts(e) < ts(f))
        }) {
            let Some(s) = x.attrs.session else { continue };
            steps.push(step(
                x,
                format!(
                    "{node} (the old leader) expires session {} on resume: not committed, epoch {new_epoch} had formed",
                    hex_id(s),
                ),
            ));
            f.unconfirmed.push(format!(
                "{node}, no longer leader, logged the expiry of {} after epoch {new_epoch} formed: no quorum committed it",
                hex_id(s),
            ));
        }
        let Some(follows) = follows else {
            return end;
        };
        steps.push(step(
            follows,
            format!(
                "{node} follows zk{} in epoch {new_epoch}",
                unknown(f.change.new_leader),
            ),
        ));
        end = ts(follows);
        if let Some(s) = mine().find(|e| {
            SYNC_KINDS.contains(&&*e.kind)
                && ts(e) >= ts(follows)
                && ts(e) - ts(follows) <= self.def.old_leader_sync_window_ms * MS
        }) {
            let mode = s.kind.trim_start_matches("sync.").to_string();
            steps.push(step(
                s,
                format!(
                    "{node} syncs with the new leader by {}",
                    mode.to_uppercase()
                ),
            ));
            f.sync.insert(node.to_string(), mode);
            end = ts(s);
        }
        end
    }
}

/// The epoch the logs begin in, when they begin inside one (rotated away, or collected from a
/// running ensemble): a stand-in for its formation, dated before every event, with no node and
/// no leader (the old leader is then unknown) and the epoch's first zxid. Its epoch is the
/// newest the servers' election lines (their last zxid, the votes' peer epoch) name below the
/// first formation's. None when the first formation is the logs' own beginning: no loss of a
/// leader (only `loss_kinds` count, not a server starting to look) or no earlier epoch that
/// committed.
fn unseen_epoch(ev: &[&Event], formed: &[&Event], d: &FailoverDef) -> Option<Event> {
    let first = formed.first()?;
    let (e1, t1) = (first.attrs.zxid? >> 32, first.ts?);
    let earlier = before(ev, t1);
    if !earlier
        .iter()
        .any(|e| d.loss_kinds.iter().any(|k| k == &*e.kind))
    {
        return None;
    }
    let e0 = earlier
        .iter()
        .filter(|e| e.kind.starts_with("election."))
        .flat_map(|e| [e.attrs.zxid.map(|z| z >> 32), e.attrs.epoch])
        .flatten()
        .filter(|&x| x >= 1 && x < e1)
        .max()?;
    let mut stand_in = (*first).clone();
    stand_in.ts = Some(earlier.first()?.ts? - 1);
    stand_in.node = Arc::from("");
    stand_in.myid = None;
    stand_in.attrs.leader = None;
    stand_in.attrs.zxid = Some(e0 << 32);
    Some(stand_in)
}
