//! Services' primaries in an incident. The record decides: a recipe's holder changing in the
//! committed transactions ([`crate::recipe`]) is a service failover, whatever the services
//! log. Their own role lines are attached as corroboration (when each instance noticed), and a
//! line claiming a role the record says its instance did not hold is a warning (split brain).
//! Services that no recipe covers keep the rows their role lines show.

use std::collections::HashMap;

use super::model::{Notice, ServiceFailover, Step};
use super::steps::step;
use super::window::{span, ts};
use crate::event::{hex_id, Event};
use crate::recipe::{self, Disagreement, End, Holding, Recipes, Timeline};
use crate::time::rfc3339;

const MS: i64 = 1_000_000;

/// The recipes' timelines and the services' lines, derived once per detection.
pub struct Services<'e> {
    /// Every recipe parent's holders.
    pub timelines: Vec<Timeline>,
    /// The services' role lines, in time order.
    claims: Vec<&'e Event>,
    /// Committed transactions by zxid (the evidence of a holder's change).
    txns: HashMap<u64, &'e Event>,
    /// Each session's transactions in zxid order (a new holder's next write).
    writes: HashMap<u64, Vec<&'e Event>>,
    /// Claims the record contradicts.
    pub disagreements: Vec<Disagreement>,
}

/// What a window of an incident shows about services.
#[derive(Default)]
pub struct Found {
    /// The rows.
    pub failovers: Vec<ServiceFailover>,
    /// Their steps.
    pub steps: Vec<Step>,
    /// Split-brain warnings.
    pub warnings: Vec<String>,
}

impl<'e> Services<'e> {
    /// Reads the recipes out of `ev` (time order).
    pub fn new(ev: &[&'e Event], recipes: &Recipes) -> Services<'e> {
        let txn: Vec<&Event> = ev
            .iter()
            .copied()
            .filter(|e| e.kind.starts_with("txn.") && e.attrs.zxid.is_some())
            .collect();
        let timelines = recipe::timelines(ev.iter().copied(), &recipes.schemes);
        let mut txns = HashMap::new();
        let mut writes: HashMap<u64, Vec<&Event>> = HashMap::new();
        for e in &txn {
            if let Some(z) = e.attrs.zxid {
                txns.insert(z, *e);
            }
            if let Some(s) = e.attrs.session {
                writes.entry(s).or_default().push(*e);
            }
        }
        for w in writes.values_mut() {
            w.sort_by_key(|e| e.attrs.zxid);
        }
        let claims: Vec<&Event> = ev
            .iter()
            .copied()
            .filter(|e| &*e.kind == recipe::SERVICE_ROLE)
            .collect();
        let record = recipe::record_span(txn.iter().copied());
        let disagreements = if timelines.is_empty() {
            Vec::new()
        } else {
            recipe::disagreements(&timelines, &claims, recipes.claim_skew_ms, record)
        };
        Services {
            timelines,
            claims,
            txns,
            writes,
            disagreements,
        }
    }

    /// A role line some recipe instance speaks: the record tells its story, the line only
    /// corroborates.
    fn covered(&self, e: &Event) -> bool {
        !recipe::speakers(&self.timelines, e).is_empty()
    }

    /// The services' primaries that changed in `[lo, hi]`, and the holdings that ended with
    /// the closeSession of one of `sessions` (whenever that was). With `only` set, just the
    /// holdings of those sessions count (a session expiry's own).
    pub fn between(&self, lo: i64, hi: i64, sessions: &[u64], only: bool) -> Found {
        let mut found = Found::default();
        // The holdings whose end this window tells (parent, znode, end zxid).
        let mut told: Vec<(&str, &str, u64)> = Vec::new();
        for t in &self.timelines {
            for (i, h) in t.holdings.iter().enumerate() {
                let (Some(until), Some(uz)) = (h.until_ts, h.until_zxid) else {
                    continue;
                };
                let closed = self
                    .txns
                    .get(&uz)
                    .is_some_and(|c| &*c.kind == "txn.closeSession")
                    && sessions.contains(&h.session);
                let inside = (lo..=hi).contains(&until);
                if !(closed || inside && !only) {
                    continue;
                }
                told.push((&t.parent, &h.znode, uz));
                // A clean close is the client's own decision to leave (a shutdown, a restart):
                // a failover expires sessions or makes clients give their nodes up, it does not
                // close them. Said as a step, not counted as the failover's.
                if !closed && h.ended == Some(End::SessionClosed) {
                    if let (Some(e), Some(n)) = (self.txns.get(&uz), t.holdings.get(i + 1)) {
                        found.steps.push(step(
                            e,
                            format!(
                                "service {}: {} closed its session (a shutdown or restart, not the failover's doing); {} holds {} from zxid {}",
                                t.service,
                                h.holder,
                                n.holder,
                                t.parent,
                                hex_id(n.from_zxid)
                            ),
                        ));
                    }
                    continue;
                }
                self.row(t, h, t.holdings.get(i + 1), &mut found);
            }
        }
        // Role lines no recipe covers: the services' own word.
        let uncovered: Vec<&Event> = span(&self.claims, lo, hi)
            .iter()
            .copied()
            .filter(|e| !self.covered(e))
            .collect();
        if !uncovered.is_empty() {
            for (sf, st) in from_logs(&self.claims, &uncovered, |e| !self.covered(e)) {
                found.failovers.push(sf);
                found.steps.push(st);
            }
        }
        // Claims the record contradicts: by a claimant that lost the role, in the incident
        // that tells that loss; by one that never held it, in the incident around the claim.
        for d in &self.disagreements {
            let ours = match &d.lost {
                Some(l) => told
                    .iter()
                    .any(|(p, z, u)| *p == d.parent && *z == l.znode && Some(*u) == l.until_zxid),
                None => (lo..=hi).contains(&d.first),
            };
            if ours {
                found.warnings.push(d.describe());
                found.steps.push(Step {
                    ts: rfc3339(d.first),
                    node: d.node.clone(),
                    kind: recipe::SERVICE_ROLE.to_string(),
                    summary: format!(
                        "{} claims {} of {} but does not hold {} in the record: split brain?",
                        d.instance, d.role, d.service, d.parent
                    ),
                    evidence: d.evidence.clone(),
                    at: d.first,
                    session: None,
                });
            }
        }
        found
    }

    /// The row (or, when the same instance holds again or nobody does, the step) for holding
    /// `h` of `t` ending, `next` the holding after it.
    fn row(&self, t: &Timeline, h: &Holding, next: Option<&Holding>, found: &mut Found) {
        let (Some(until), Some(uz)) = (h.until_ts, h.until_zxid) else {
            return;
        };
        let why = h.ended.map_or("znode gone", End::words);
        let evidence = self.txns.get(&uz).copied();
        let Some(n) = next else {
            if let Some(e) = evidence {
                found.steps.push(step(
                    e,
                    format!(
                        "service {}: {} loses {} ({why}, zxid {}); no holder after it in the record",
                        t.service,
                        h.holder,
                        t.parent,
                        hex_id(uz)
                    ),
                ));
            }
            return;
        };
        if n.holder == h.holder {
            if let Some(e) = evidence {
                found.steps.push(step(
                    e,
                    format!(
                        "service {}: {} loses {} ({why}, zxid {}) and holds it again from zxid {} ({} ms later, session {})",
                        t.service,
                        h.holder,
                        t.parent,
                        hex_id(uz),
                        hex_id(n.from_zxid),
                        (n.from_ts - until) / MS,
                        hex_id(n.session)
                    ),
                ));
            }
            return;
        }
        // When each instance noticed: the role lines of the two instances from the deletion
        // until the new holder's holding ends; the new holder's next write.
        let end = n.until_ts.unwrap_or(i64::MAX);
        let mut noticed: Vec<Notice> = Vec::new();
        for e in span(&self.claims, until.saturating_sub(2_000 * MS), end) {
            for (ti, x) in recipe::speakers(&self.timelines, e) {
                let Some(tt) = self.timelines.get(ti) else {
                    continue;
                };
                let ours = tt.parent == t.parent
                    && (x.session == h.session
                        || x.session == n.session
                        || x.name == h.holder
                        || x.name == n.holder);
                if ours && !noticed.iter().any(|o| o.instance == x.name) {
                    let said = e.attrs.state.as_deref().unwrap_or("?");
                    found.steps.push(step(
                        e,
                        format!(
                            "{} says {said} ({} ms {} {}'s znode went)",
                            x.name,
                            (ts(e) - until).abs() / MS,
                            if ts(e) < until { "before" } else { "after" },
                            h.holder
                        ),
                    ));
                    noticed.push(Notice {
                        instance: x.name.clone(),
                        node: e.node.to_string(),
                        at: rfc3339(ts(e)),
                        said: e.attrs.state.clone().unwrap_or_default(),
                        after_ms: (ts(e) - until) / MS,
                        evidence: format!("{}:{}", e.source, e.offset),
                    });
                    break;
                }
            }
        }
        let line = noticed
            .iter()
            .find(|o| o.instance == n.holder && o.after_ms >= 0)
            .map(|o| o.after_ms);
        // Its next write while it held (not the one that ended its holding; a session's close
        // is not a write of its own choosing).
        let write = self.writes.get(&n.session).and_then(|w| {
            w.iter()
                .take_while(|e| n.until_zxid.is_none_or(|u| e.attrs.zxid < Some(u)))
                .find(|e| {
                    e.attrs.zxid > Some(n.from_zxid)
                        && ts(e) >= until
                        && !matches!(&*e.kind, "txn.closeSession" | "txn.createSession")
                })
                .copied()
        });
        if let Some(w) = write {
            noticed.push(Notice {
                instance: n.holder.clone(),
                node: w.node.to_string(),
                at: rfc3339(ts(w)),
                said: format!(
                    "write: {} {}",
                    w.kind.trim_start_matches("txn."),
                    w.attrs.path.as_deref().unwrap_or("")
                )
                .trim_end()
                .to_string(),
                after_ms: (ts(w) - until) / MS,
                evidence: format!("{}:{}", w.source, w.offset),
            });
        }
        let gap = match (line, write.map(|w| (ts(w) - until) / MS)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let noticed_at = gap.map(|g| rfc3339(until + g * MS));
        noticed.sort_by_key(|o| o.after_ms);
        let sf = ServiceFailover {
            service: t.service.clone(),
            from: Some(h.holder.clone()),
            to: n.holder.clone(),
            at: rfc3339(n.from_ts),
            source: "record".into(),
            recipe: Some(t.parent.clone()),
            ended: h.ended,
            deleted_zxid: Some(hex_id(uz)),
            deleted_at: Some(rfc3339(until)),
            takeover_zxid: Some(hex_id(n.from_zxid)),
            noticed_at,
            gap_ms: gap.map(|g| g.max(0) as u64),
            noticed,
        };
        let gap_words = match sf.gap_ms {
            Some(g) => format!("; {} noticed {g} ms after", n.holder),
            None => format!("; no line or write of {} shows when it noticed", n.holder),
        };
        let summary = format!(
            "service {}: primary moves {} -> {} (record {}: {}'s {why} at zxid {}, {} holds from zxid {}{gap_words})",
            t.service,
            h.holder,
            n.holder,
            t.parent,
            h.holder,
            hex_id(uz),
            n.holder,
            hex_id(n.from_zxid)
        );
        let at_evidence = self.txns.get(&n.from_zxid).copied().or(evidence);
        match at_evidence {
            Some(e) => found.steps.push(step(e, summary)),
            None => found.steps.push(Step {
                ts: rfc3339(n.from_ts),
                node: String::new(),
                kind: "txn".into(),
                summary,
                evidence: String::new(),
                at: n.from_ts,
                session: None,
            }),
        }
        found.failovers.push(sf);
    }
}

/// Services whose primary moved to another node among `events` (role lines, time order),
/// judged against the earlier lines of `all` that `keep` accepts: what the services' own
/// lines show where no recipe does. Each with the step that shows it.
fn from_logs(
    all: &[&Event],
    events: &[&Event],
    keep: impl Fn(&Event) -> bool,
) -> Vec<(ServiceFailover, Step)> {
    let mut out = Vec::new();
    for e in events.iter().copied().filter(|e| recipe::claims_primary(e)) {
        let service = e.logger.as_deref().unwrap_or("service").to_string();
        // The previous primary of the same service: the last node before this that became it.
        let prev = all
            .iter()
            .copied()
            .filter(|p| recipe::claims_primary(p) && ts(p) < ts(e) && keep(p))
            .rfind(|p| p.logger.as_deref() == Some(service.as_str()))
            .map(|p| p.node.to_string());
        if prev.as_deref() == Some(&*e.node) {
            continue; // the same instance regained the role: no failover
        }
        let s = step(
            e,
            format!(
                "service {service}: primary moves {} -> {} (its own line; no recipe in the record covers it)",
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
                source: "logs".into(),
                recipe: None,
                ended: None,
                deleted_zxid: None,
                deleted_at: None,
                takeover_zxid: None,
                noticed_at: None,
                gap_ms: None,
                noticed: Vec::new(),
            },
            s,
        ));
    }
    out
}

/// Rows from role lines alone (no record): for tests of the wording rules.
#[cfg(test)]
pub fn service_failovers_from_logs(ev: &[&Event]) -> Vec<(ServiceFailover, Step)> {
    let claims: Vec<&Event> = ev
        .iter()
        .copied()
        .filter(|e| &*e.kind == recipe::SERVICE_ROLE)
        .collect();
    from_logs(&claims, &claims, |_| true)
}
