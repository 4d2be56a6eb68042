//! Incidents reconstructed from indexed events: leader failovers and session expiries, with a
//! step-by-step timeline where every step cites its evidence (`file:offset`).
//!
//! Definitions (windows, which kinds count as evidence) live in `queries/*.toml`, embedded and
//! overridable at run time; the reconstruction logic for each kind is here.
//!
//! Evidence has weight: a committed transaction (`closeSession` in a txn log) is the arbiter of
//! what the ensemble did; log lines say what their writer believed.

use std::collections::BTreeMap;
use std::sync::Arc;

pub mod html;
pub mod skew;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{hex_id, Event};
use crate::time::{rfc3339, short};

/// The embedded incident definitions (`queries/`).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "leader-failover.toml",
        include_str!("../../queries/leader-failover.toml"),
    ),
    (
        "session-expiry.toml",
        include_str!("../../queries/session-expiry.toml"),
    ),
    (
        "quorum-loss.toml",
        include_str!("../../queries/quorum-loss.toml"),
    ),
    (
        "server-rejoin.toml",
        include_str!("../../queries/server-rejoin.toml"),
    ),
    (
        "election-storm.toml",
        include_str!("../../queries/election-storm.toml"),
    ),
];

/// Event kinds incident detection reads (everything else is left in the index).
pub const SKELETON_QUERY: &str = "kind:server.starting OR kind:sync.uptodate OR kind:election.* OR kind:quorum.* OR kind:follower.* OR kind:observer.* OR kind:leader.* OR kind:learner.lost OR kind:sync.diff OR kind:sync.snap OR kind:sync.trunc OR kind:session.expired OR kind:txn.closeSession OR kind:txn.createSession OR kind:service.role OR kind:client.session_expired OR kind:client.connected";

/// Tunable parameters of the leader-failover definition.
#[derive(Debug, Clone, Deserialize)]
pub struct FailoverDef {
    /// Kinds that show the old leader was lost.
    pub loss_kinds: Vec<String>,
    /// An expiry counts when within timeout × this factor after formation...
    pub expiry_factor: f64,
    /// ... plus this slack.
    pub expiry_slack_ms: i64,
    /// Role changes this long after formation count.
    pub service_window_ms: i64,
}

/// Tunable parameters of the quorum-loss definition.
#[derive(Debug, Clone, Deserialize)]
pub struct QuorumLossDef {
    /// Kinds that show the ensemble could not form a quorum.
    pub evidence_kinds: Vec<String>,
    /// An election's notification timeout is evidence only from this long on (the timeout
    /// doubles from 200 ms while votes do not come: one short timeout is a slow election).
    #[serde(default = "default_min_notification_timeout_ms")]
    pub min_notification_timeout_ms: u64,
}

fn default_min_notification_timeout_ms() -> u64 {
    1600
}

/// Tunable parameters of the election-storm definition.
#[derive(Debug, Clone, Deserialize)]
pub struct StormDef {
    /// The window.
    pub window_ms: i64,
    /// Failovers within it that make a storm.
    pub min_failovers: usize,
}

/// Tunable parameters of the server-rejoin definition.
#[derive(Debug, Clone, Deserialize)]
pub struct RejoinDef {
    /// A FOLLOWING this close to a new epoch's formation is part of that election, not a rejoin.
    pub formation_margin_ms: i64,
    /// How far back the server's start is looked for.
    pub max_start_ms: i64,
}

/// Tunable parameters of the session-expiry definition.
#[derive(Debug, Clone, Deserialize)]
pub struct ExpiryDef {
    /// Role changes this long after the expiry count.
    pub service_window_ms: i64,
    /// How long after the expiry the client's notice is looked for.
    pub notice_window_ms: i64,
}

#[derive(Debug, Deserialize)]
struct DefFile {
    incident: toml::Table,
}

/// All definitions.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// leader-failover.
    pub failover: FailoverDef,
    /// session-expiry.
    pub expiry: ExpiryDef,
    /// quorum-loss.
    pub quorum: QuorumLossDef,
    /// server-rejoin.
    pub rejoin: RejoinDef,
    /// election-storm.
    pub storm: StormDef,
}

impl Definitions {
    /// The embedded definitions, overridden by same-named files in `dirs`.
    pub fn load(dirs: &[impl AsRef<std::path::Path>]) -> Result<Definitions> {
        let mut texts: BTreeMap<String, (String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (n.to_string(), (format!("embedded:{n}"), t.to_string())))
            .collect();
        for d in dirs {
            for name in EMBEDDED.iter().map(|(n, _)| *n) {
                let p = d.as_ref().join(name);
                if p.exists() {
                    let t = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                    texts.insert(name.to_string(), (p.display().to_string(), t));
                }
            }
        }
        let get = |name: &str| -> Result<(String, toml::Table)> {
            let (origin, text) = texts.get(name).cloned().unwrap_or_default();
            let f: DefFile = toml::from_str(&text).map_err(|e| Error::Format {
                origin: origin.clone(),
                reason: e.to_string(),
            })?;
            Ok((origin, f.incident))
        };
        let (o1, t1) = get("leader-failover.toml")?;
        let (o2, t2) = get("session-expiry.toml")?;
        let (o3, t3) = get("quorum-loss.toml")?;
        let (o4, t4) = get("server-rejoin.toml")?;
        let (o5, t5) = get("election-storm.toml")?;
        let bad = |origin: String| {
            move |e: toml::de::Error| Error::Format {
                origin: origin.clone(),
                reason: e.to_string(),
            }
        };
        Ok(Definitions {
            failover: t1.try_into().map_err(bad(o1))?,
            expiry: t2.try_into().map_err(bad(o2))?,
            quorum: t3.try_into().map_err(bad(o3))?,
            rejoin: t4.try_into().map_err(bad(o4))?,
            storm: t5.try_into().map_err(bad(o5))?,
        })
    }
}

/// One step of a timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// When (RFC 3339 UTC).
    pub ts: String,
    /// Where.
    pub node: String,
    /// The event kind.
    pub kind: String,
    /// What happened, in words.
    pub summary: String,
    /// `file:offset` of the evidence.
    pub evidence: String,
    #[serde(skip)]
    at: i64,
}

/// A service whose primary changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceFailover {
    /// Service name (the logger of its role-change line).
    pub service: String,
    /// Previous primary (node), if known.
    pub from: Option<String>,
    /// New primary (node).
    pub to: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// A client session that reconnected to another server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionMove {
    /// Session id (`0x` hex).
    pub session: String,
    /// The client node.
    pub client: String,
    /// Server address before.
    pub from: String,
    /// Server address after.
    pub to: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// A reconstructed incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    /// Stable id: `leader-failover-epoch-N` or `session-expiry-0x<session>`.
    pub id: String,
    /// `leader-failover` or `session-expiry`.
    pub kind: String,
    /// First evidence (RFC 3339 UTC).
    pub started_at: String,
    /// Last evidence (RFC 3339 UTC).
    pub ended_at: String,
    /// Leader before (server id).
    pub old_leader: Option<u64>,
    /// Leader after (server id).
    pub new_leader: Option<u64>,
    /// Epoch before.
    pub old_epoch: Option<u64>,
    /// Epoch after.
    pub new_epoch: Option<u64>,
    /// Election time reported by each server (node → ms).
    pub election_ms: BTreeMap<String, u64>,
    /// How each follower synchronised (node → diff/snap/trunc).
    pub sync: BTreeMap<String, String>,
    /// Sessions expired (`0x` hex).
    pub sessions_expired: Vec<String>,
    /// Ephemeral znodes deleted with them (from the committed closeSession txns).
    pub ephemerals_lost: Vec<String>,
    /// Services whose primary changed.
    pub service_failovers: Vec<ServiceFailover>,
    /// Client sessions that reconnected to another server.
    pub sessions_moved: Vec<SessionMove>,
    /// The timeline.
    pub steps: Vec<Step>,
    /// Claims no commit confirms, and why.
    pub unconfirmed: Vec<String>,
    /// quorum-loss: how long the ensemble could not serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_ms: Option<u64>,
    /// server-rejoin: the server that rejoined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip)]
    start_ns: i64,
}

fn step(e: &Event, summary: String) -> Step {
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
fn close_step(c: &Event, s: u64) -> Step {
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

/// The epoch the logs begin in, when they begin inside one (rotated away, or collected from a
/// running ensemble): a stand-in for its formation, dated before every event, with no node and no
/// leader (the old leader is then unknown) and the epoch's first zxid. Its epoch is the newest
/// the servers' election lines (their last zxid, the votes' peer epoch) name below the first
/// formation's. None when the first formation is the logs' own beginning: no loss of a leader
/// (only `loss_kinds` count, not a server starting to look) or no earlier epoch that committed.
fn unseen_epoch(ev: &[&Event], formed: &[&Event], d: &FailoverDef) -> Option<Event> {
    let first = formed.first()?;
    let (e1, t1) = (first.attrs.zxid? >> 32, first.ts?);
    let earlier = &ev[..ev.partition_point(|e| e.ts.unwrap_or(0) < t1)];
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

/// The events of `ev` (in time order) with `lo <= ts <= hi`.
fn span<'e, 'a>(ev: &'e [&'a Event], lo: i64, hi: i64) -> &'e [&'a Event] {
    let ts = |e: &&Event| e.ts.unwrap_or(0);
    let a = ev.partition_point(|e| ts(e) < lo);
    let b = ev.partition_point(|e| ts(e) <= hi).max(a);
    &ev[a..b]
}

fn leader_of(e: &Event) -> Option<u64> {
    e.myid.or(e.attrs.leader).or_else(|| {
        e.node
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    })
}

fn is_primary(e: &Event) -> bool {
    e.attrs
        .state
        .as_deref()
        .is_some_and(|s| s.ends_with("primary") || s.ends_with("leader") || s.ends_with("master"))
}

/// Kinds [`detect`] reads only inside [`connect_windows`]: numerous (every client connection),
/// so a caller may load them for those spans only.
pub const WINDOWED_KINDS: &[&str] = &["client.connected"];

/// The spans in which [`detect`] reads `client.connected` events (sessions that move to
/// another server during a leader failover): from each failover's start to its last step plus
/// the service window. `detect` over events without them finds the same failovers, so a caller
/// can run it once without them, then load them (and each session's connection before) for
/// these spans only.
pub fn connect_windows(found: &[Incident], defs: &Definitions) -> Vec<(i64, i64)> {
    found
        .iter()
        .filter(|i| i.kind == "leader-failover")
        .map(|i| {
            let last = i.steps.iter().map(|s| s.at).max().unwrap_or(i.start_ns);
            let hi = last.max(i.start_ns) + defs.failover.service_window_ms * 1_000_000;
            (i.start_ns, hi.saturating_add(1))
        })
        .collect()
}

/// Detects incidents in events (any order; only the skeleton kinds matter).
pub fn detect(events: &[Event], defs: &Definitions) -> Vec<Incident> {
    let mut ev: Vec<&Event> = events.iter().filter(|e| e.ts.is_some()).collect();
    ev.sort_by_key(|e| (e.ts, e.offset));
    let ts = |e: &Event| e.ts.unwrap_or(0);
    let formed: Vec<&Event> = ev
        .iter()
        .copied()
        .filter(|e| &*e.kind == "quorum.formed")
        .collect();
    let roles = Roles::new(&ev);
    let conns = connections(&ev);
    // The epoch formed last at or before t (its leader's quorum line).
    let formed_before = |t: i64| formed.iter().copied().rfind(|f| ts(f) <= t);
    // An expiry logged by the leader of an earlier epoch after a newer one formed (it stalled
    // and resumed without knowing): no quorum will commit it.
    let stale = |e: &Event| formed_before(ts(e)).is_some_and(|f| roles.stale(e, f));
    // A txn of an earlier epoch than the one formed before it was written sits in the log of a
    // leader that had been replaced (a SNAP sync leaves it there): it was never committed.
    let committed = |e: &Event| match (
        e.attrs.zxid,
        formed_before(ts(e)).and_then(|f| f.attrs.zxid),
    ) {
        (Some(z), Some(f)) => z >> 32 >= f >> 32,
        _ => true,
    };
    let closes: BTreeMap<u64, &Event> = ev
        .iter()
        .filter(|e| &*e.kind == "txn.closeSession" && committed(e))
        .filter_map(|e| e.attrs.session.map(|s| (s, *e)))
        .collect();
    let timeouts: BTreeMap<u64, u64> = ev
        .iter()
        .filter(|e| &*e.kind == "txn.createSession")
        .filter_map(|e| Some((e.attrs.session?, e.attrs.timeout_ms?)))
        .collect();
    let mut out = Vec::new();
    let mut explained: Vec<u64> = Vec::new();
    let d = &defs.failover;
    // Logs that begin inside an epoch hold no formation of it; a stand-in opens the chain.
    let unseen = unseen_epoch(&ev, &formed, d);
    let chain: Vec<&Event> = unseen.iter().chain(formed.iter().copied()).collect();
    for w in chain.windows(2) {
        let (prev, cur) = (w[0], w[1]);
        let (Some(z0), Some(z1)) = (prev.attrs.zxid, cur.attrs.zxid) else {
            continue;
        };
        let (e0, e1) = (z0 >> 32, z1 >> 32);
        if e1 <= e0 {
            continue;
        }
        // A leader of an earlier epoch that stalled (SIGSTOP, a long GC pause) logs the loss of
        // its quorum when it resumes, after this epoch formed: not a loss of this epoch's leader.
        let between: Vec<&Event> = span(&ev, ts(prev).saturating_add(1), ts(cur))
            .iter()
            .copied()
            .filter(|e| !roles.stale(e, prev))
            .collect();
        let loss = between
            .iter()
            .find(|e| d.loss_kinds.iter().any(|k| k == &*e.kind))
            .or_else(|| between.iter().find(|e| &*e.kind == "election.looking"))
            .copied();
        let Some(loss) = loss else { continue };
        let start = ts(loss);
        let formed_at = ts(cur);
        let mut inc = Incident {
            id: format!("leader-failover-epoch-{e1}"),
            kind: "leader-failover".into(),
            started_at: rfc3339(start),
            ended_at: String::new(),
            old_leader: leader_of(prev),
            new_leader: leader_of(cur),
            old_epoch: Some(e0),
            new_epoch: Some(e1),
            election_ms: BTreeMap::new(),
            sync: BTreeMap::new(),
            sessions_expired: Vec::new(),
            ephemerals_lost: Vec::new(),
            service_failovers: Vec::new(),
            sessions_moved: Vec::new(),
            steps: Vec::new(),
            unconfirmed: Vec::new(),
            unavailable_ms: None,
            server: None,
            start_ns: start,
        };
        inc.steps.push(step(
            loss,
            format!(
                "leader zk{} lost: {}",
                unknown(inc.old_leader),
                loss.headline()
            ),
        ));
        let mut end = formed_at;
        let after_window = formed_at + 10_000_000_000;
        let mut looking: Vec<&str> = Vec::new();
        for e in span(&ev, start, after_window).iter().copied() {
            match &*e.kind {
                "election.looking"
                    if ts(e) <= formed_at
                        && !looking.contains(&&*e.node)
                        && !roles.stale(e, prev) =>
                {
                    looking.push(&e.node);
                    inc.steps.push(step(e, format!("{} LOOKING", e.node)));
                }
                "election.took" if ts(e) <= formed_at + 2_000_000_000 => {
                    if let Some(ms) = e.attrs.duration_ms {
                        inc.election_ms.insert(e.node.to_string(), ms);
                    }
                    inc.steps.push(step(
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
                "sync.diff" | "sync.snap" | "sync.trunc"
                    if ts(e) <= formed_at + 5_000_000_000 && e.myid != inc.new_leader =>
                {
                    let mode = e.kind.trim_start_matches("sync.").to_string();
                    inc.sync.insert(e.node.to_string(), mode.clone());
                    inc.steps.push(step(
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
        inc.steps.push(step(
            cur,
            format!(
                "zk{} leads epoch {} with a quorum",
                unknown(inc.new_leader),
                e1
            ),
        ));
        let next_formed = formed
            .iter()
            .map(|f| ts(f))
            .find(|&t| t > formed_at)
            .unwrap_or(i64::MAX);
        end = end.max(old_leader_steps_down(
            &ev,
            &roles,
            prev,
            cur,
            next_formed,
            defs.rejoin.formation_margin_ms,
            &mut inc,
        ));
        // Sessions the new leader expired because they could not come back in time.
        for e in span(&ev, start, i64::MAX)
            .iter()
            .copied()
            .filter(|e| &*e.kind == "session.expired" && !stale(e))
        {
            let Some(s) = e.attrs.session else { continue };
            let timeout = e
                .attrs
                .timeout_ms
                .or_else(|| timeouts.get(&s).copied())
                .unwrap_or(0);
            let limit = formed_at
                + ((timeout as f64 * d.expiry_factor) as i64 + d.expiry_slack_ms) * 1_000_000;
            if ts(e) > limit {
                break;
            }
            explained.push(s);
            inc.sessions_expired.push(hex_id(s));
            inc.steps.push(step(
                e,
                format!(
                    "{} expires session {} (timeout {} ms)",
                    e.node,
                    hex_id(s),
                    timeout
                ),
            ));
            end = end.max(ts(e));
            match closes.get(&s) {
                Some(c) => {
                    inc.ephemerals_lost.extend(c.paths.iter().cloned());
                    inc.steps.push(close_step(c, s));
                }
                None => inc.unconfirmed.push(format!(
                    "expiry of {} is logged by {} but no closeSession txn for it is indexed (ingest the txn logs to confirm)",
                    hex_id(s),
                    e.node
                )),
            }
        }
        service_failovers(
            &ev,
            start,
            formed_at + d.service_window_ms * 1_000_000,
            &mut inc,
            &mut end,
        );
        sessions_moved(
            &ev,
            &conns,
            start,
            formed_at + d.service_window_ms * 1_000_000,
            &mut inc,
        );
        inc.steps.sort_by_key(|s| s.at);
        end = end.max(inc.steps.last().map(|s| s.at).unwrap_or(end));
        inc.ended_at = rfc3339(end);
        if let Some(q) = quorum_loss(&between, loss, cur, &inc, &defs.quorum) {
            out.push(q);
        }
        out.push(inc);
    }
    out.extend(rejoins(&ev, &formed, &roles, &defs.rejoin));
    out.extend(storms(&out, &defs.storm));
    // Expiries no failover explains.
    let x = &defs.expiry;
    for e in ev
        .iter()
        .copied()
        .filter(|e| &*e.kind == "session.expired" && !stale(e))
    {
        let Some(s) = e.attrs.session else { continue };
        if explained.contains(&s) {
            continue;
        }
        let at = ts(e);
        let mut inc = Incident {
            id: format!("session-expiry-{}", hex_id(s)),
            kind: "session-expiry".into(),
            started_at: rfc3339(at),
            ended_at: String::new(),
            old_leader: leader_of(e),
            new_leader: None,
            old_epoch: None,
            new_epoch: None,
            election_ms: BTreeMap::new(),
            sync: BTreeMap::new(),
            sessions_expired: vec![hex_id(s)],
            ephemerals_lost: Vec::new(),
            service_failovers: Vec::new(),
            sessions_moved: Vec::new(),
            steps: vec![step(e, format!("{} expires session {}", e.node, hex_id(s)))],
            unconfirmed: Vec::new(),
            unavailable_ms: None,
            server: None,
            start_ns: at,
        };
        let mut end = at;
        match closes.get(&s) {
            Some(c) => {
                inc.ephemerals_lost.extend(c.paths.iter().cloned());
                inc.steps.push(close_step(c, s));
                end = end.max(ts(c));
            }
            None => inc.unconfirmed.push(format!(
                "no closeSession txn for {} is indexed: the expiry is what {} logged, not a confirmed commit",
                hex_id(s),
                e.node
            )),
        }
        let notice_until = at + x.notice_window_ms * 1_000_000;
        if let Some(n) = ev[ev.partition_point(|n| ts(n) < at)..]
            .iter()
            .copied()
            .take_while(|n| ts(n) <= notice_until)
            .find(|n| &*n.kind == "client.session_expired" && n.attrs.session == Some(s))
        {
            inc.steps.push(step(
                n,
                format!("{} learns its session {} expired", n.node, hex_id(s)),
            ));
            end = end.max(ts(n));
        }
        service_failovers(
            &ev,
            at,
            at + x.service_window_ms * 1_000_000,
            &mut inc,
            &mut end,
        );
        inc.steps.sort_by_key(|s| s.at);
        inc.ended_at = rfc3339(end);
        out.push(inc);
    }
    out.sort_by_key(|i| i.start_ns);
    out
}

/// The ensemble could not serve between a leader's loss and the next quorum, and the interval
/// shows why (a leader without a quorum, elections timing out).
fn quorum_loss(
    between: &[&Event],
    loss: &Event,
    formed: &Event,
    failover: &Incident,
    def: &QuorumLossDef,
) -> Option<Incident> {
    let evidence: Vec<&Event> = between
        .iter()
        .copied()
        .filter(|e| def.evidence_kinds.iter().any(|k| k == &*e.kind))
        .filter(|e| {
            &*e.kind != "election.notification_timeout"
                || e.attrs.duration_ms.unwrap_or(0) >= def.min_notification_timeout_ms
        })
        .collect();
    if evidence.is_empty() {
        return None;
    }
    let (start, end) = (loss.ts.unwrap_or(0), formed.ts.unwrap_or(0));
    let mut steps = vec![step(loss, format!("leader lost: {}", loss.headline()))];
    // A server that declared itself leader without the quorum to back it (it shut down again).
    let gave_up = |l: &Event| {
        between.iter().any(|s| {
            s.node == l.node
                && s.ts > l.ts
                && matches!(
                    &*s.kind,
                    "leader.shutdown" | "quorum.wait_failed" | "quorum.lost"
                )
        })
    };
    for e in between
        .iter()
        .copied()
        .filter(|e| &*e.kind == "election.leading" && gave_up(e))
    {
        steps.push(step(
            e,
            format!("{} tries to lead without a quorum", e.node),
        ));
    }
    let mut timeouts = 0;
    for e in &evidence {
        if &*e.kind == "election.notification_timeout" {
            timeouts += 1;
            if timeouts > 1 {
                continue;
            }
        }
        steps.push(step(e, format!("{}: {}", e.node, e.headline())));
    }
    steps.push(step(
        formed,
        format!(
            "{} forms a quorum again (epoch {})",
            formed.node,
            failover.new_epoch.unwrap_or(0)
        ),
    ));
    steps.sort_by_key(|s| s.at);
    Some(Incident {
        id: format!("quorum-loss-epoch-{}", failover.new_epoch.unwrap_or(0)),
        kind: "quorum-loss".into(),
        started_at: rfc3339(start),
        ended_at: rfc3339(end),
        old_leader: failover.old_leader,
        new_leader: failover.new_leader,
        old_epoch: failover.old_epoch,
        new_epoch: failover.new_epoch,
        election_ms: failover.election_ms.clone(),
        sync: BTreeMap::new(),
        sessions_expired: Vec::new(),
        ephemerals_lost: Vec::new(),
        service_failovers: Vec::new(),
        sessions_moved: Vec::new(),
        steps,
        unconfirmed: Vec::new(),
        unavailable_ms: u64::try_from((end - start) / 1_000_000).ok(),
        server: None,
        start_ns: start,
    })
}

/// Kinds that decide a server's role: elected (leading, following, observing) or restarted.
const ROLE_KINDS: &[&str] = &[
    "election.took",
    "election.leading",
    "election.following",
    "election.observing",
    "server.starting",
];

/// Leader-side kinds a leader logs when it finds itself without a quorum.
const STEP_DOWN_KINDS: &[&str] = &["quorum.lost", "quorum.wait_failed", "leader.shutdown"];

/// Each server's role decisions in time order: (time, leading?).
struct Roles<'a> {
    by_node: BTreeMap<&'a str, Vec<(i64, bool)>>,
}

impl<'a> Roles<'a> {
    fn new(ev: &[&'a Event]) -> Roles<'a> {
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
    fn stale(&self, e: &Event, formed: &Event) -> bool {
        let t0 = formed.ts.unwrap_or(0);
        e.node != formed.node
            && self
                .before(&e.node, e.ts.unwrap_or(0))
                .is_some_and(|(t, leading)| leading && t < t0)
    }
}

/// A failed-over leader (`prev`'s node) that did not die (it stalled: SIGSTOP, GC, a frozen
/// disk) resumes after the new epoch (`cur`) formed, finds it has no quorum, steps down and
/// follows the new leader: its step-down, the expiries it logged meanwhile, its rejoin and how it
/// synced, as steps of the failover. Returns the last step's time (0 when the old leader logged
/// no step-down before the next formation).
fn old_leader_steps_down(
    ev: &[&Event],
    roles: &Roles<'_>,
    prev: &Event,
    cur: &Event,
    next_formed: i64,
    margin_ms: i64,
    inc: &mut Incident,
) -> i64 {
    let ts = |e: &Event| e.ts.unwrap_or(0);
    let formed_at = ts(cur);
    let node = &*prev.node;
    let after = span(
        ev,
        formed_at.saturating_add(1),
        next_formed.saturating_sub(1),
    );
    let mine = || after.iter().copied().filter(move |e| &*e.node == node);
    let Some(down) = mine().find(|e| STEP_DOWN_KINDS.contains(&&*e.kind) && roles.stale(e, cur))
    else {
        return 0;
    };
    // Its first line after the new epoch formed: it was silent (stalled) until then.
    if let Some(back) = mine().next().filter(|b| ts(b) < ts(down)) {
        inc.steps.push(step(
            back,
            format!(
                "{node} (the old leader) is heard from again: {}",
                back.headline()
            ),
        ));
    }
    inc.steps.push(step(
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
    // Sessions it expired on resume, as if no time had passed for them: proposals of an epoch
    // that was over, which no quorum committed.
    for x in mine().filter(|e| {
        &*e.kind == "session.expired"
            && roles.stale(e, cur)
            && follows.is_none_or(|f| ts(e) < ts(f))
    }) {
        let Some(s) = x.attrs.session else { continue };
        inc.steps.push(step(
            x,
            format!(
                "{node} (the old leader) expires session {} on resume: not committed, epoch {} had formed",
                hex_id(s),
                inc.new_epoch.unwrap_or(0)
            ),
        ));
        inc.unconfirmed.push(format!(
            "{node}, no longer leader, logged the expiry of {} after epoch {} formed: no quorum committed it",
            hex_id(s),
            inc.new_epoch.unwrap_or(0)
        ));
    }
    let Some(follows) = follows else {
        return end;
    };
    inc.steps.push(step(
        follows,
        format!(
            "{node} follows zk{} in epoch {}",
            unknown(inc.new_leader),
            inc.new_epoch.unwrap_or(0)
        ),
    ));
    end = ts(follows);
    if let Some(s) = mine().find(|e| {
        matches!(&*e.kind, "sync.diff" | "sync.snap" | "sync.trunc")
            && ts(e) >= ts(follows)
            && ts(e) - ts(follows) <= margin_ms * 1_000_000
    }) {
        let mode = s.kind.trim_start_matches("sync.").to_string();
        inc.steps.push(step(
            s,
            format!(
                "{node} syncs with the new leader by {}",
                mode.to_uppercase()
            ),
        ));
        inc.sync.insert(node.to_string(), mode);
        end = ts(s);
    }
    end
}

/// Client sessions whose connection moved to another server during the failover.
/// Each session's client connections that name a server, in time order: (time, server).
type Connections<'a> = std::collections::HashMap<u64, Vec<(i64, &'a str)>>;

fn connections<'a>(ev: &[&'a Event]) -> Connections<'a> {
    let mut out = Connections::new();
    for e in ev.iter().filter(|e| &*e.kind == "client.connected") {
        if let (Some(s), Some(peer), Some(t)) = (e.attrs.session, e.attrs.peer.as_deref(), e.ts) {
            out.entry(s).or_default().push((t, peer));
        }
    }
    out
}

fn sessions_moved(ev: &[&Event], conns: &Connections<'_>, from: i64, to: i64, inc: &mut Incident) {
    let ts = |e: &Event| e.ts.unwrap_or(0);
    let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let window = &ev[ev.partition_point(|e| ts(e) < from)..];
    for e in window
        .iter()
        .copied()
        .take_while(|e| ts(e) <= to)
        .filter(|e| &*e.kind == "client.connected" && e.attrs.session.is_some())
    {
        let (Some(s), Some(peer)) = (e.attrs.session, e.attrs.peer.as_deref()) else {
            continue;
        };
        if seen.contains(&s) {
            continue;
        }
        // The session's server before the window: its last connection before `from`.
        let before = conns.get(&s).and_then(|list| {
            let n = list.partition_point(|c| c.0 < from);
            n.checked_sub(1).map(|i| list[i].1)
        });
        if let Some(prev) = before {
            if prev != peer {
                seen.insert(s);
                inc.sessions_moved.push(SessionMove {
                    session: hex_id(s),
                    client: e.node.to_string(),
                    from: prev.to_string(),
                    to: peer.to_string(),
                    at: e.ts.map(rfc3339).unwrap_or_default(),
                });
                inc.steps.push(step(
                    e,
                    format!(
                        "{} session {} moves {} -> {}",
                        e.node,
                        hex_id(s),
                        prev,
                        peer
                    ),
                ));
            }
        }
    }
}

/// Many failovers in a short window.
fn storms(found: &[Incident], def: &StormDef) -> Vec<Incident> {
    let fo: Vec<&Incident> = found
        .iter()
        .filter(|i| i.kind == "leader-failover")
        .collect();
    let w = def.window_ms * 1_000_000;
    let mut out = Vec::new();
    let mut i = 0;
    while i < fo.len() {
        let mut j = i;
        while j + 1 < fo.len() && fo[j + 1].start_ns - fo[i].start_ns <= w {
            j += 1;
        }
        let n = j - i + 1;
        if n >= def.min_failovers.max(2) {
            let group = &fo[i..=j];
            let steps = group
                .iter()
                .filter_map(|f| f.steps.first().cloned())
                .collect();
            out.push(Incident {
                id: format!(
                    "election-storm-epoch-{}-{}",
                    group[0].new_epoch.unwrap_or(0),
                    group[n - 1].new_epoch.unwrap_or(0)
                ),
                kind: "election-storm".into(),
                started_at: group[0].started_at.clone(),
                ended_at: group[n - 1].ended_at.clone(),
                old_leader: group[0].old_leader,
                new_leader: group[n - 1].new_leader,
                old_epoch: group[0].old_epoch,
                new_epoch: group[n - 1].new_epoch,
                election_ms: BTreeMap::new(),
                sync: BTreeMap::new(),
                sessions_expired: group
                    .iter()
                    .flat_map(|f| f.sessions_expired.clone())
                    .collect(),
                ephemerals_lost: group
                    .iter()
                    .flat_map(|f| f.ephemerals_lost.clone())
                    .collect(),
                service_failovers: group
                    .iter()
                    .flat_map(|f| f.service_failovers.clone())
                    .collect(),
                sessions_moved: Vec::new(),
                steps,
                unconfirmed: Vec::new(),
                unavailable_ms: None,
                server: None,
                start_ns: group[0].start_ns,
            });
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Servers that started and joined an ensemble that already had a leader.
fn rejoins(ev: &[&Event], formed: &[&Event], roles: &Roles<'_>, def: &RejoinDef) -> Vec<Incident> {
    let ts = |e: &Event| e.ts.unwrap_or(0);
    let margin = def.formation_margin_ms * 1_000_000;
    let mut out = Vec::new();
    for f in ev
        .iter()
        .copied()
        .filter(|e| &*e.kind == "election.took" && e.attrs.state.as_deref() == Some("following"))
    {
        let t = ts(f);
        // Part of an election that formed a new epoch, unless it is a replaced leader that
        // follows only after the epoch formed without it (it was stalled).
        if formed
            .iter()
            .any(|q| (ts(q) - t).abs() <= margin && !(t > ts(q) && roles.stale(f, q)))
        {
            continue;
        }
        let mine: Vec<&Event> = ev.iter().copied().filter(|e| e.node == f.node).collect();
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
                && t - ts(e) <= def.max_start_ms * 1_000_000
        });
        // Not restarted: it left its previous role (a leader that lost its quorum, a follower
        // that lost its leader) and came back.
        let left = if started.is_none() {
            mine.iter().copied().find(|e| {
                ts(e) > previous
                    && ts(e) <= t
                    && (STEP_DOWN_KINDS.contains(&&*e.kind)
                        || matches!(
                            &*e.kind,
                            "follower.leader_lost" | "observer.leader_lost" | "election.looking"
                        ))
            })
        } else {
            None
        };
        let sync = mine.iter().copied().find(|e| {
            matches!(&*e.kind, "sync.diff" | "sync.snap" | "sync.trunc")
                && ts(e) >= t
                && ts(e) - t <= margin
        });
        let uptodate = mine
            .iter()
            .copied()
            .find(|e| &*e.kind == "sync.uptodate" && ts(e) >= t && ts(e) - t <= margin);
        let start = started.or(left).map(ts).unwrap_or(t);
        let end = uptodate.or(sync).map(ts).unwrap_or(t);
        let mut steps = Vec::new();
        if let Some(s) = started {
            steps.push(step(s, format!("{} starts", s.node)));
        }
        if let Some(l) = left {
            steps.push(step(
                l,
                format!("{} leaves its role: {}", l.node, l.headline()),
            ));
        }
        steps.push(step(
            f,
            format!(
                "{} finds the leader and follows ({} ms)",
                f.node,
                f.attrs.duration_ms.unwrap_or(0)
            ),
        ));
        let mut sync_map = BTreeMap::new();
        if let Some(s) = sync {
            let mode = s.kind.trim_start_matches("sync.").to_string();
            steps.push(step(
                s,
                format!("{} syncs by {}", s.node, mode.to_uppercase()),
            ));
            sync_map.insert(s.node.to_string(), mode);
        }
        if let Some(u) = uptodate {
            steps.push(step(u, format!("{} is up to date", u.node)));
        }
        out.push(Incident {
            id: format!(
                "server-rejoin-{}-{}",
                f.node,
                &rfc3339(t)[11..19].replace(':', "")
            ),
            kind: "server-rejoin".into(),
            started_at: rfc3339(start),
            ended_at: rfc3339(end),
            old_leader: None,
            new_leader: None,
            old_epoch: None,
            new_epoch: None,
            election_ms: f
                .attrs
                .duration_ms
                .map(|ms| (f.node.to_string(), ms))
                .into_iter()
                .collect(),
            sync: sync_map,
            sessions_expired: Vec::new(),
            ephemerals_lost: Vec::new(),
            service_failovers: Vec::new(),
            sessions_moved: Vec::new(),
            steps,
            unconfirmed: Vec::new(),
            unavailable_ms: None,
            server: Some(f.node.to_string()),
            start_ns: start,
        });
    }
    out
}

fn service_failovers(ev: &[&Event], from: i64, to: i64, inc: &mut Incident, end: &mut i64) {
    let ts = |e: &Event| e.ts.unwrap_or(0);
    for e in ev[ev.partition_point(|e| ts(e) < from)..]
        .iter()
        .copied()
        .take_while(|e| ts(e) <= to)
        .filter(|e| &*e.kind == "service.role" && is_primary(e))
    {
        let service = e.logger.as_deref().unwrap_or("service").to_string();
        // The previous primary of the same service: the last node before this that became it.
        let prev = ev
            .iter()
            .copied()
            .filter(|p| &*p.kind == "service.role" && is_primary(p) && ts(p) < ts(e))
            .rfind(|p| p.logger.as_deref() == Some(service.as_str()))
            .map(|p| p.node.to_string());
        if prev.as_deref() == Some(&*e.node) {
            continue; // the same instance regained the role: no failover
        }
        inc.service_failovers.push(ServiceFailover {
            service: service.clone(),
            from: prev.clone(),
            to: e.node.to_string(),
            at: e.ts.map(rfc3339).unwrap_or_default(),
        });
        inc.steps.push(step(
            e,
            format!(
                "service {service}: primary moves {} -> {}",
                prev.unwrap_or_else(|| "?".into()),
                e.node
            ),
        ));
        *end = (*end).max(ts(e));
    }
}

/// A number, or `?` when it is not known.
fn unknown(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |x| x.to_string())
}

/// One line saying what the incident amounts to.
pub fn summary(i: &Incident) -> String {
    let id = unknown;
    match i.kind.as_str() {
        "leader-failover" => format!(
            "zk{} -> zk{}, epoch {} -> {}, {} sessions expired, {} service failovers",
            id(i.old_leader),
            id(i.new_leader),
            id(i.old_epoch),
            id(i.new_epoch),
            i.sessions_expired.len(),
            i.service_failovers.len()
        ),
        "quorum-loss" => format!(
            "ensemble unavailable for {} ms (epoch {} -> {})",
            id(i.unavailable_ms),
            id(i.old_epoch),
            id(i.new_epoch)
        ),
        "election-storm" => format!(
            "elections from epoch {} to {}, leaders zk{} ... zk{}",
            id(i.old_epoch),
            id(i.new_epoch),
            id(i.old_leader),
            id(i.new_leader)
        ),
        "server-rejoin" => format!(
            "{} rejoined by {}",
            i.server.as_deref().unwrap_or("?"),
            i.sync
                .values()
                .next()
                .map(|m| m.to_uppercase())
                .unwrap_or_else(|| "?".into())
        ),
        _ => format!(
            "{} expired, {} ephemerals lost, {} service failovers",
            i.sessions_expired.join(", "),
            i.ephemerals_lost.len(),
            i.service_failovers.len()
        ),
    }
}

/// The post-mortem as text: one line per step.
pub fn text(inc: &Incident) -> String {
    text_with_skew(inc, &[])
}

/// The correction applied to a node's times: only for a clock proven off (its bounds exclude
/// zero), by the midpoint of the bounds.
pub fn correction_ms(skews: &[skew::Skew], node: &str) -> Option<f64> {
    skews
        .iter()
        .find(|s| s.node == node && (s.lo_ms > 0.0 || s.hi_ms < 0.0))
        .map(|s| s.estimate_ms)
}

/// The post-mortem as text, with corrected times for nodes whose clocks are proven off: each
/// correction is stated, local times are kept beside corrected ones, and steps are ordered by
/// corrected time.
pub fn text_with_skew(inc: &Incident, skews: &[skew::Skew]) -> String {
    let mut s = format!(
        "{} ({}) {} .. {}\n",
        inc.id, inc.kind, inc.started_at, inc.ended_at
    );
    if inc.kind == "leader-failover" {
        s.push_str(&format!(
            "  leader zk{} (epoch {}) -> zk{} (epoch {})\n",
            unknown(inc.old_leader),
            unknown(inc.old_epoch),
            unknown(inc.new_leader),
            unknown(inc.new_epoch),
        ));
        if !inc.election_ms.is_empty() {
            let v: Vec<String> = inc
                .election_ms
                .iter()
                .map(|(n, ms)| format!("{n} {ms} ms"))
                .collect();
            s.push_str(&format!("  election: {}\n", v.join(", ")));
        }
    }
    s.push_str(&format!("  {}\n", summary(inc)));
    if !inc.sessions_expired.is_empty() {
        s.push_str(&format!(
            "  sessions expired: {}\n",
            inc.sessions_expired.join(", ")
        ));
    }
    if !inc.ephemerals_lost.is_empty() {
        s.push_str(&format!(
            "  ephemerals lost: {}\n",
            inc.ephemerals_lost.join(", ")
        ));
    }
    for m in &inc.sessions_moved {
        s.push_str(&format!(
            "  session {} ({}) moved {} -> {} at {}\n",
            m.session, m.client, m.from, m.to, m.at
        ));
    }
    for f in &inc.service_failovers {
        s.push_str(&format!(
            "  service {}: {} -> {} at {}\n",
            f.service,
            f.from.as_deref().unwrap_or("?"),
            f.to,
            f.at
        ));
    }
    for u in &inc.unconfirmed {
        s.push_str(&format!("  unconfirmed: {u}\n"));
    }
    let corrected = |st: &Step| {
        st.at
            - correction_ms(skews, &st.node)
                .map(|c| (c * 1e6) as i64)
                .unwrap_or(0)
    };
    let mut nodes: Vec<&str> = inc.steps.iter().map(|st| st.node.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut any = false;
    for n in nodes {
        if let Some(sk) = skews.iter().find(|k| k.node == n) {
            if let Some(c) = correction_ms(skews, n) {
                any = true;
                s.push_str(&format!(
                    "  clock: {n} is {:.0} to {:.0} ms off the leader's txn clock; its times are corrected by {:.0} ms\n",
                    sk.lo_ms, sk.hi_ms, c
                ));
            }
        }
    }
    let mut steps: Vec<&Step> = inc.steps.iter().collect();
    steps.sort_by_key(|st| corrected(st));
    if any {
        s.push_str("  timeline (UTC, corrected; local time in brackets where it differs):\n");
    } else {
        s.push_str("  timeline (UTC, as each node logged it):\n");
    }
    for st in steps {
        let c = corrected(st);
        let local = if c != st.at {
            format!(" (local {})", short(st.at))
        } else {
            String::new()
        };
        s.push_str(&format!(
            "    {}  {:<8} {}{}   [{}]\n",
            short(c),
            st.node,
            st.summary,
            local,
            st.evidence
        ));
    }
    s
}
