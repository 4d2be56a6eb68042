//! Clock skew between nodes, estimated from causality rather than assumed away.
//!
//! The reference clock is the ensemble's: the time the leader stamped on each committed
//! transaction (txn header). A client that logs the zxid of its own write (`mzxid=0x...`) can only
//! log it after the leader stamped it, and it cannot issue its next write before logging this one.
//! For a node whose clock is off by Δ from the reference:
//!
//! * `t_client(X) - Δ ≥ t_txn(X)`        ⇒ Δ ≤ t_client(X) - t_txn(X)
//! * `t_txn(Y) > t_client(X) - Δ`         ⇒ Δ > t_client(X) - t_txn(Y), where Y is the next zxid
//!   the same node logs for the same session (a client logs its writes one after the other:
//!   the next logged write was issued after this one was logged). Other txns of the session are
//!   not used for this bound: another thread of the client may have issued them concurrently.
//!
//! Every such pair narrows the interval; the estimate is its midpoint, and both bounds are
//! reported. A node with no such evidence gets no estimate (and nothing is corrected silently).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// One node's clock offset from the ensemble's txn clock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Skew {
    /// The node.
    pub node: String,
    /// Its ensemble (absent: the default one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<String>,
    /// Lower bound of the offset, ms (the node's clock minus the reference).
    pub lo_ms: f64,
    /// Upper bound, ms.
    pub hi_ms: f64,
    /// Midpoint, ms.
    pub estimate_ms: f64,
    /// How many causal pairs constrain it.
    pub pairs: usize,
}

/// Estimates each node's offset from the events (client lines naming zxids, and txn records).
pub fn estimate(events: &[Event]) -> Vec<Skew> {
    // Each ensemble's clocks are judged against its own transactions.
    if let Some(parts) = crate::event::split_ensembles(events) {
        return parts.iter().flat_map(|(_, part)| estimate(part)).collect();
    }
    let ensemble = crate::event::named_ensemble(events);
    // zxid -> (leader time ns, session)
    let mut txns: BTreeMap<u64, (i64, Option<u64>)> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.logger.as_deref() == Some("txnlog"))
    {
        if let (Some(z), Some(t)) = (e.attrs.zxid, e.ts) {
            txns.insert(z, (t, e.attrs.session));
        }
    }
    // node -> its own writes it logged: (session, zxid, local time), in log order
    let mut logged: BTreeMap<String, Vec<(u64, u64, i64)>> = BTreeMap::new();
    for e in events {
        if e.logger.as_deref() == Some("txnlog") || e.logger.as_deref() == Some("snapshot") {
            continue;
        }
        let (Some(z), Some(s), Some(t)) = (e.attrs.zxid, e.attrs.session, e.ts) else {
            continue;
        };
        match txns.get(&z) {
            // The line names its own session's txn: it was logged after that commit.
            Some((_, Some(owner))) if *owner == s => logged
                .entry(e.node.to_string())
                .or_default()
                .push((s, z, t)),
            _ => {}
        }
    }
    let mut bounds: BTreeMap<String, (i64, i64, usize)> = BTreeMap::new();
    for (node, mut v) in logged {
        v.sort_by_key(|x| x.2);
        let b = bounds.entry(node).or_insert((i64::MIN, i64::MAX, 0));
        for (i, &(s, z, t)) in v.iter().enumerate() {
            let Some((tx, _)) = txns.get(&z) else {
                continue;
            };
            b.1 = b.1.min(t - tx);
            b.2 += 1;
            let next = v[i + 1..].iter().find(|x| x.0 == s && x.1 > z);
            if let Some((tn, _)) = next.and_then(|x| txns.get(&x.1)) {
                b.0 = b.0.max(t - tn);
            }
        }
    }
    bounds
        .into_iter()
        .filter(|(_, b)| b.2 > 0 && b.1 != i64::MAX)
        .map(|(node, (lo, hi, n))| {
            let lo = if lo == i64::MIN {
                hi - 60_000_000_000
            } else {
                lo.min(hi)
            };
            let (lo_ms, hi_ms) = (lo as f64 / 1e6, hi as f64 / 1e6);
            Skew {
                ensemble: ensemble.clone(),
                node,
                lo_ms,
                hi_ms,
                estimate_ms: (lo_ms + hi_ms) / 2.0,
                pairs: n,
            }
        })
        .collect()
}

/// The correction applied to a node's times: only for a clock proven off (its bounds exclude
/// zero), by the midpoint of the bounds.
pub fn correction_ms(skews: &[Skew], node: &str) -> Option<f64> {
    skews
        .iter()
        .find(|s| s.node == node && (s.lo_ms > 0.0 || s.hi_ms < 0.0))
        .map(|s| s.estimate_ms)
}
