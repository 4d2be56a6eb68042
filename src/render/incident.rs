//! An incident in words: the one-line summary (`zklens incidents`) and the post-mortem text
//! (`zklens incident ID`), with times corrected for clocks proven off.

use std::fmt::Write as _;

use crate::incident::skew::{correction_ms, Skew};
use crate::incident::{Detail, Incident, Step};
use crate::time::short;

/// A number, or `?` when it is not known.
fn unknown(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |x| x.to_string())
}

/// One line saying what the incident amounts to.
pub fn summary(i: &Incident) -> String {
    let id = unknown;
    match &i.detail {
        Detail::LeaderFailover(f) => format!(
            "zk{} -> zk{}, epoch {} -> {}, {} sessions expired, {} service failovers",
            id(f.change.old_leader),
            id(f.change.new_leader),
            id(f.change.old_epoch),
            id(f.change.new_epoch),
            f.sessions_expired.len(),
            f.service_failovers.len()
        ),
        Detail::QuorumLoss(q) => format!(
            "ensemble unavailable for {} ms (epoch {} -> {})",
            id(q.unavailable_ms),
            id(q.change.old_epoch),
            id(q.change.new_epoch)
        ),
        Detail::ElectionStorm(s) => format!(
            "elections from epoch {} to {}, leaders zk{} ... zk{}",
            id(s.change.old_epoch),
            id(s.change.new_epoch),
            id(s.change.old_leader),
            id(s.change.new_leader)
        ),
        Detail::ServerRejoin(r) => format!(
            "{} rejoined by {}",
            r.server,
            r.sync
                .as_deref()
                .map(str::to_uppercase)
                .unwrap_or_else(|| "?".into())
        ),
        Detail::SessionExpiry(x) => format!(
            "{} expired, {} ephemerals lost, {} service failovers",
            x.session,
            x.ephemerals_lost.len(),
            x.service_failovers.len()
        ),
    }
}

/// The post-mortem as text: one line per step.
pub fn text(inc: &Incident) -> String {
    text_with_skew(inc, &[])
}

/// The post-mortem as text, with corrected times for nodes whose clocks are proven off: each
/// correction is stated, local times are kept beside corrected ones, and steps are ordered by
/// corrected time.
pub fn text_with_skew(inc: &Incident, skews: &[Skew]) -> String {
    let r = inc.record();
    let mut s = format!(
        "{} ({}) {} .. {}\n",
        inc.id,
        inc.kind(),
        inc.started_at,
        inc.ended_at
    );
    if let Detail::LeaderFailover(f) = &inc.detail {
        let _ = writeln!(
            s,
            "  leader zk{} (epoch {}) -> zk{} (epoch {})",
            unknown(f.change.old_leader),
            unknown(f.change.old_epoch),
            unknown(f.change.new_leader),
            unknown(f.change.new_epoch),
        );
        if !f.election_ms.is_empty() {
            let v: Vec<String> = f
                .election_ms
                .iter()
                .map(|(n, ms)| format!("{n} {ms} ms"))
                .collect();
            let _ = writeln!(s, "  election: {}", v.join(", "));
        }
    }
    let _ = writeln!(s, "  {}", summary(inc));
    if !r.sessions_expired.is_empty() {
        let _ = writeln!(s, "  sessions expired: {}", r.sessions_expired.join(", "));
    }
    if !r.ephemerals_lost.is_empty() {
        let _ = writeln!(s, "  ephemerals lost: {}", r.ephemerals_lost.join(", "));
    }
    for m in r.sessions_moved {
        let _ = writeln!(
            s,
            "  session {} ({}) moved {} -> {} at {}",
            m.session, m.client, m.from, m.to, m.at
        );
    }
    for f in r.service_failovers {
        let how = match (&f.recipe, &f.deleted_zxid, &f.takeover_zxid) {
            (Some(recipe), Some(del), Some(take)) => format!(
                " (record {recipe}: {} at zxid {del}, takeover zxid {take}; {})",
                f.ended.map_or("gone", crate::recipe::End::words),
                match f.gap_ms {
                    Some(g) => format!("no primary that knew it for {g} ms"),
                    None => "when the new primary noticed is not logged".into(),
                }
            ),
            _ => " (its own log line)".into(),
        };
        let _ = writeln!(
            s,
            "  service {}: {} -> {} at {}{how}",
            f.service,
            f.from.as_deref().unwrap_or("?"),
            f.to,
            f.at
        );
        for n in &f.noticed {
            let _ = writeln!(
                s,
                "    {} noticed at {} ({:+} ms): {}  [{}]",
                n.instance, n.at, n.after_ms, n.said, n.evidence
            );
        }
    }
    for u in r.unconfirmed {
        let _ = writeln!(s, "  unconfirmed: {u}");
    }
    for w in r.warnings {
        let _ = writeln!(s, "  WARNING: {w}");
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
                let _ = writeln!(
                    s,
                    "  clock: {n} is {:.0} to {:.0} ms off the leader's txn clock; its times are corrected by {:.0} ms",
                    sk.lo_ms, sk.hi_ms, c
                );
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
        let _ = writeln!(
            s,
            "    {}  {:<8} {}{}   [{}]",
            short(c),
            st.node,
            st.summary,
            local,
            st.evidence
        );
    }
    s
}
