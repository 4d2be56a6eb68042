//! An incident as a ShiViz log (<https://bestchai.bitbucket.io/shiviz/>): the happens-before
//! graph of its steps, one host per server and per client session (`calc-b/0x…`), with vector
//! clocks built from the causal links the HTML
//! report draws ([`super::html::links`]) and each node's own order.
//!
//! The output is what ShiViz's "paste a log" box takes: the parser regex on the first line, an
//! empty line (the delimiter between executions: there is one), then two lines per step, the
//! event and `HOST {CLOCK}`:
//!
//! ```text
//! (?<event>.*)\n(?<host>\S*) (?<clock>\{.*\})
//!
//! 2026-11-25T03:39:21.092Z follower.leader_lost: leader zk3 lost (zk1/logs/zookeeper.log:25024)
//! zk1 {"zk1":1}
//! ```
//!
//! A step's clock holds its own host (its count of that host's steps so far) and, for every
//! step it causally follows, that step's clock merged in; so each host's own entry grows by one
//! per step, as ShiViz requires.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::incident::Incident;

use super::html::links;

/// The regex ShiViz parses the log with (named groups `event`, `host`, `clock`).
pub const REGEX: &str = r"(?<event>.*)\n(?<host>\S*) (?<clock>\{.*\})";

/// Each step's ShiViz host: its node for a server; for a client, the node and the session it
/// was in (`calc-b/0x10000fef8870000`): the session its event names, else the one the node's
/// closest earlier step names, else the closest later one's, else the node alone.
fn hosts(inc: &Incident) -> Vec<String> {
    let steps = &inc.steps;
    let client_kind = |k: &str| k.starts_with("client.") || k.starts_with("service.");
    let clients: std::collections::BTreeSet<&str> = steps
        .iter()
        .map(|s| s.node.as_str())
        .filter(|n| {
            steps
                .iter()
                .filter(|s| s.node == *n)
                .all(|s| client_kind(&s.kind))
        })
        .collect();
    let mut by_time: Vec<usize> = (0..steps.len()).collect();
    by_time.sort_by_key(|&i| (steps[i].at, i));
    let session_near = |i: usize| -> Option<u64> {
        let node = &steps[i].node;
        let pos = by_time.iter().position(|&j| j == i).unwrap_or(0);
        let same = |j: &usize| steps[*j].node == *node && steps[*j].session.is_some();
        steps[i]
            .session
            .or_else(|| {
                by_time[..pos]
                    .iter()
                    .rev()
                    .find(|j| same(j))
                    .and_then(|&j| steps[j].session)
            })
            .or_else(|| {
                by_time[pos..]
                    .iter()
                    .find(|j| same(j))
                    .and_then(|&j| steps[j].session)
            })
    };
    (0..steps.len())
        .map(|i| {
            let node = host(&steps[i].node);
            if !clients.contains(steps[i].node.as_str()) {
                return node;
            }
            match session_near(i) {
                Some(s) => format!("{node}/{}", crate::event::hex_id(s)),
                None => node,
            }
        })
        .collect()
}

/// A ShiViz host name: the node, without white space (ShiViz splits on it).
fn host(node: &str) -> String {
    let h: String = node
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    if h.is_empty() {
        "unknown".into()
    } else {
        h
    }
}

/// The order steps are given clocks in: by time, except that a step comes after every step it
/// causally follows (a skewed clock may date an effect before its cause).
pub(crate) fn causal_order(times: &[i64], preds: &[Vec<usize>]) -> Vec<usize> {
    let n = times.len();
    let mut indegree: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (to, ps) in preds.iter().enumerate() {
        for &p in ps {
            succs[p].push(to);
        }
    }
    let mut ready: std::collections::BTreeSet<(i64, usize)> = (0..n)
        .filter(|&i| indegree[i] == 0)
        .map(|i| (times[i], i))
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some(&first) = ready.iter().next() {
        ready.remove(&first);
        let i = first.1;
        out.push(i);
        for &s in &succs[i] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.insert((times[s], s));
            }
        }
    }
    // A cycle (links that contradict each other): the rest in time order.
    if out.len() < n {
        let mut rest: Vec<usize> = (0..n).filter(|i| !out.contains(i)).collect();
        rest.sort_by_key(|&i| (times[i], i));
        out.extend(rest);
    }
    out
}

/// One step's line of the log, without line breaks.
fn event_text(ts: &str, kind: &str, summary: &str, evidence: &str) -> String {
    let t = format!("{ts} {kind}: {summary} ({evidence})");
    t.replace(['\n', '\r'], " ")
}

/// The incident as a ShiViz log, regex first.
pub fn render(inc: &Incident) -> String {
    let steps = &inc.steps;
    let n = steps.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in links(inc) {
        if l.from < n && l.to < n && l.from != l.to {
            preds[l.to].push(l.from);
        }
    }
    // Each host's own order is causal too.
    let times: Vec<i64> = steps.iter().map(|s| s.at).collect();
    let order = causal_order(&times, &preds);
    let mut clocks: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); n];
    let mut last_of: BTreeMap<String, usize> = BTreeMap::new();
    let names = hosts(inc);
    let mut out = format!("{REGEX}\n\n");
    for i in order {
        let h = names[i].clone();
        let mut clock: BTreeMap<String, u64> = BTreeMap::new();
        let mut merge = |c: &BTreeMap<String, u64>| {
            for (k, v) in c {
                let e = clock.entry(k.clone()).or_insert(0);
                *e = (*e).max(*v);
            }
        };
        if let Some(&prev) = last_of.get(&h) {
            merge(&clocks[prev]);
        }
        for &p in &preds[i] {
            merge(&clocks[p]);
        }
        *clock.entry(h.clone()).or_insert(0) += 1;
        let st = &steps[i];
        let json = serde_json::to_string(&clock).unwrap_or_else(|_| "{}".into());
        let _ = write!(
            out,
            "{}\n{h} {json}\n",
            event_text(&st.ts, &st.kind, &st.summary, &st.evidence)
        );
        clocks[i] = clock;
        last_of.insert(h, i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_come_first_even_when_a_clock_says_otherwise() {
        // 0 at t=10, 1 at t=5 but caused by 0, 2 at t=7.
        let order = causal_order(&[10, 5, 7], &[vec![], vec![0], vec![]]);
        assert_eq!(order, vec![2, 0, 1]);
        // A cycle still yields every step once.
        let order = causal_order(&[1, 2], &[vec![1], vec![0]]);
        assert_eq!(order.len(), 2);
    }

    #[test]
    fn hosts_have_no_white_space() {
        assert_eq!(host("calc a"), "calc_a");
        assert_eq!(host(""), "unknown");
    }
}
