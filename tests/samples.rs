//! Golden tests over the real incident in `samples/incident-1` (recorded by
//! `samples/record/record.sh` on a real Debian ZooKeeper 3.8 ensemble). Expectations are derived
//! from the raw files by the test itself (simple, independent rules), not from zklens's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use regex::Regex;
use serde_json::Value;

mod common;
use common::{sample_index as data_dir, zklens as zk};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-1")
}

fn query(q: &str) -> Vec<Value> {
    let out = zk(data_dir())
        .args(["query", q, "--limit", "0", "-o", "jsonl"])
        .output()
        .expect("run query");
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{q}: {:?}",
        out
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn read(rel: &str) -> String {
    let p = samples().join(rel);
    String::from_utf8(std::fs::read(&p).expect("sample file")).expect("utf-8 sample")
}

const TEXT_LOGS: &[(&str, &str)] = &[
    ("zk1", "zk1/logs/zookeeper.log"),
    ("zk2", "zk2/logs/zookeeper.log"),
    ("zk3", "zk3/logs/zookeeper.log"),
    ("calc-a", "calc-a/logs/calc-a.log"),
    ("calc-b", "calc-b/logs/calc-b.log"),
    ("ledger-1", "ledger-1/logs/ledger-1.log"),
    ("store-1", "store-1/logs/store-1.jsonl"),
];

/// Entries of a log by an independent rule: a line starting with a timestamp (or a JSON object)
/// begins an entry; anything else continues the previous one.
fn entries(text: &str) -> Vec<(usize, String)> {
    let head = Regex::new(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} |\{)").expect("regex");
    let mut out = Vec::new();
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        if head.is_match(line) {
            out.push((off, line.trim_end().to_string()));
        }
        off += line.len();
    }
    out
}

#[test]
fn every_entry_is_indexed_once_on_its_node() {
    for (node, rel) in TEXT_LOGS {
        let want = entries(&read(rel));
        let got = query(&format!("node:{node} -logger:txnlog -logger:snapshot"));
        assert_eq!(got.len(), want.len(), "{rel}: events vs entries");
        let offsets: Vec<u64> = got.iter().filter_map(|r| r["offset"].as_u64()).collect();
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        let want_offsets: Vec<u64> = want.iter().map(|(o, _)| *o as u64).collect();
        assert_eq!(sorted, want_offsets, "{rel}: entry offsets");
    }
}

#[test]
fn binary_ensemble_files_are_not_indexed_as_text() {
    // myid/currentEpoch files and txn logs/snapshots never show up as text events.
    let sources: Vec<String> = query("kind:log")
        .iter()
        .filter_map(|r| r["source"].as_str().map(str::to_string))
        .collect();
    assert!(sources.iter().all(|s| s.contains("/logs/")), "{sources:?}");
}

#[test]
fn sample_lines_are_findable() {
    // Every 25th entry of every log, searched by a phrase from its message, is found at its offset.
    let log4j =
        Regex::new(r"^\S+ \S+ (?:\[myid:[^\]]*\] )?- \S+\s+\[.*?@\d+\] - (.*)$").expect("regex");
    let python = Regex::new(r"^\S+ \S+ \S+ [^:]+: (.*)$").expect("regex");
    for (node, rel) in TEXT_LOGS {
        for (off, line) in entries(&read(rel)).into_iter().step_by(25) {
            let msg: String = if line.starts_with('{') {
                let v: Value = serde_json::from_str(&line).expect("json line");
                v["msg"].as_str().unwrap_or_default().to_string()
            } else {
                let re = if node.starts_with("calc") {
                    &python
                } else {
                    &log4j
                };
                re.captures(&line)
                    .map(|c| c[1].to_string())
                    .unwrap_or_default()
            };
            // The first words, consecutive (a phrase must keep their adjacency).
            let words: Vec<&str> = msg
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .take(4)
                .collect();
            if words.is_empty() {
                continue;
            }
            let q = format!("node:{node} \"{}\"", words.join(" "));
            let hits = query(&q);
            assert!(
                hits.iter()
                    .any(|h| h["offset"].as_u64() == Some(off as u64)),
                "{rel} offset {off}: {q} did not find {line:?}"
            );
        }
    }
}

/// Server lines from the reference list, by message prefix: none may stay unclassified.
const REFERENCE: &[&str] = &[
    "LOOKING",
    "FOLLOWING",
    "LEADING",
    "PeerState set to LOOKING",
    "Peer state changed:",
    "New election. My id",
    "Notification:",
    "Notification time out",
    "Cannot open channel to",
    "Connection broken for id",
    "Follower sid:",
    "Synchronizing with Learner",
    "Sending DIFF",
    "Sending TRUNC",
    "Sending snapshot",
    "Have quorum of supporters",
    "Shutdown called",
    "Getting a diff from the leader",
    "Getting a snapshot from leader",
    "Learner received",
    "Exception when following the leader",
    "Disconnected from leader",
    "shutdown Follower",
    "Successfully connected to leader",
    "Expiring session",
    "Submitting",
    "Closing session",
    "Revalidating client",
    "Creating new log file",
    "Snapshotting:",
    "Opening socket connection to server",
    "Session establishment complete",
    "Client session timed out",
    "Unable to reconnect to ZooKeeper service",
    "EventThread shut down",
];

#[test]
fn reference_lines_are_all_classified() {
    let unclassified = query("kind:log");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &unclassified {
        let msg = r["message"].as_str().unwrap_or_default();
        for p in REFERENCE {
            if msg.starts_with(p) {
                *seen.entry(p).or_default() += 1;
            }
        }
    }
    assert!(
        seen.is_empty(),
        "reference lines left as kind log: {seen:?}"
    );
    // And the sample really contains such lines (the check is not vacuous).
    let all = query("node:zk1 OR node:zk2 OR node:zk3 OR node:ledger-1");
    let present = REFERENCE
        .iter()
        .filter(|p| {
            all.iter()
                .any(|r| r["message"].as_str().is_some_and(|m| m.starts_with(*p)))
        })
        .count();
    assert!(present >= 20, "only {present} reference kinds present");
}

fn expired_sessions() -> Vec<(String, String)> {
    // (session, server node that expired it) straight from the raw server logs
    let re = Regex::new(r"Expiring session (0x[0-9a-f]+), timeout").expect("regex");
    let mut v = Vec::new();
    for n in ["zk1", "zk2", "zk3"] {
        for c in re.captures_iter(&read(&format!("{n}/logs/zookeeper.log"))) {
            v.push((c[1].to_string(), n.to_string()));
        }
    }
    v
}

fn owner_of(session: &str) -> Option<&'static str> {
    // the service whose own log registered an ephemeral znode with that session
    TEXT_LOGS
        .iter()
        .filter(|(n, _)| !n.starts_with("zk"))
        .find(|(_, rel)| {
            read(rel)
                .lines()
                .any(|l| l.contains("registered ephemeral znode") && l.contains(session))
        })
        .map(|(n, _)| *n)
}

#[test]
fn expired_sessions_are_found_on_the_expiring_server_and_the_owning_service() {
    let expired = expired_sessions();
    assert!(
        expired.len() >= 2,
        "the sample expires sessions: {expired:?}"
    );
    let mut checked = 0;
    for (sid, server) in &expired {
        let Some(owner) = owner_of(sid) else { continue };
        let hits = query(&format!("session:{sid}"));
        let nodes: Vec<&str> = hits.iter().filter_map(|h| h["node"].as_str()).collect();
        assert!(
            nodes.contains(&server.as_str()),
            "{sid}: expirer {server} missing in {nodes:?}"
        );
        assert!(
            nodes.contains(&owner),
            "{sid}: owner {owner} missing in {nodes:?}"
        );
        let exp: Vec<&Value> = hits
            .iter()
            .filter(|h| h["kind"] == "session.expired")
            .collect();
        assert_eq!(exp.len(), 1, "{sid}");
        assert_eq!(exp[0]["node"], server.as_str());
        assert_eq!(exp[0]["session"], sid.as_str());
        // times come back in order
        let ts: Vec<&str> = hits.iter().filter_map(|h| h["ts"].as_str()).collect();
        let mut sorted = ts.clone();
        sorted.sort_unstable();
        assert_eq!(ts, sorted, "{sid}: time order");
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expired sessions with a known owner: {checked}"
    );
}

#[test]
fn session_command_shows_both_sides() {
    let (sid, server) = expired_sessions().into_iter().next().expect("an expiry");
    let out = zk(data_dir())
        .args(["session", &sid])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let origin = u64::from_str_radix(sid.trim_start_matches("0x"), 16).expect("hex") >> 56;
    assert!(
        text.contains(&format!("created by server {origin}")),
        "{text}"
    );
    assert!(text.contains(&server), "{text}");
    assert!(text.contains("session.expired"), "{text}");
}

#[test]
fn kinds_match_the_raw_lines() {
    // Counts of some kinds, by independent grep over the raw files.
    let count = |pat: &str| -> usize {
        let re = Regex::new(pat).expect("regex");
        TEXT_LOGS
            .iter()
            .map(|(_, rel)| read(rel).lines().filter(|l| re.is_match(l)).count())
            .sum()
    };
    let cases: &[(&str, &str)] = &[
        (
            "session.expired",
            r" - Expiring session 0x[0-9a-f]+, timeout of \d+ms exceeded$",
        ),
        (
            "election.took",
            r" - (LEADING|FOLLOWING) - LEADER ELECTION TOOK - \d+ MS$",
        ),
        ("election.leading", r" - LEADING$"),
        ("election.following", r" - FOLLOWING$"),
        ("peer.state", r" - Peer state changed: "),
        (
            "txnlog.rolled",
            r" - Creating new log file: log\.[0-9a-f]+$",
        ),
        (
            "client.connected",
            r"( - Session establishment complete on server |Zookeeper connection established|WatchedEvent state:SyncConnected)",
        ),
        ("service.role", r"role change: \w+ -> \w+"),
    ];
    for (kind, pat) in cases {
        let want = count(pat);
        assert!(want > 0, "{kind}: the sample has such lines");
        assert_eq!(query(&format!("kind:{kind}")).len(), want, "{kind}");
    }
    // Leaders named by LEADING lines carry the writer's id.
    for r in query("kind:election.leading") {
        assert_eq!(r["leader"], r["myid"], "{r}");
        assert!(
            r["myid"].as_u64().is_some(),
            "myid known for {r} (Debian layout too)"
        );
    }
}

#[test]
fn zxid_of_a_client_write_is_found() {
    let re = Regex::new(r"mzxid=(0x[0-9a-f]+) ").expect("regex");
    let text = read("calc-a/logs/calc-a.log");
    let z = re
        .captures(&text)
        .map(|c| c[1].to_string())
        .expect("a write");
    let out = zk(data_dir())
        .args(["zxid", &z, "-o", "jsonl"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(rows
        .iter()
        .any(|r| r["node"] == "calc-a" && r["zxid"] == z.as_str()));
    let epoch = u64::from_str_radix(z.trim_start_matches("0x"), 16).expect("hex") >> 32;
    assert!(rows.iter().all(|r| r["epoch"] == epoch));
}

/// zxid → servers whose txn logs hold it, from `zklens txnlog dump` (which the oracle test holds
/// to Debian's TxnLogToolkit, record by record).
fn txn_zxids() -> BTreeMap<String, Vec<String>> {
    let re = Regex::new(r" zxid (0x[0-9a-f]+) ").expect("regex");
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in ["zk1", "zk2", "zk3"] {
        let dir = samples().join(n).join("data/version-2");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("data dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with("log."))
            })
            .collect();
        files.sort();
        let out = Command::cargo_bin("zklens")
            .expect("binary")
            .args(["txnlog", "dump"])
            .args(&files)
            .output()
            .expect("dump");
        assert!(out.status.success());
        for c in re.captures_iter(&String::from_utf8_lossy(&out.stdout)) {
            let v = m.entry(c[1].to_string()).or_default();
            if !v.contains(&n.to_string()) {
                v.push(n.to_string());
            }
        }
    }
    m
}

#[test]
fn each_transaction_is_indexed_once_with_the_servers_holding_it() {
    let want = txn_zxids();
    assert!(
        want.len() > 300,
        "the sample's txn logs hold {} txns",
        want.len()
    );
    let got = query("logger:txnlog");
    assert_eq!(got.len(), want.len(), "one event per distinct zxid");
    for r in &got {
        let z = r["zxid"].as_str().expect("zxid");
        let mut replicas: Vec<String> = r["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        replicas.sort();
        assert_eq!(Some(&replicas), want.get(z), "{z}");
        assert!(r["kind"].as_str().is_some_and(|k| k.starts_with("txn.")));
    }
    // A txn from epoch 1 was on all three servers.
    assert!(want.values().any(|v| v.len() == 3));
}

#[test]
fn expired_session_life_comes_from_the_txn_logs() {
    for (sid, server) in expired_sessions() {
        let Some(owner) = owner_of(&sid) else {
            continue;
        };
        // The ephemerals the owner registered with that session, from its own log.
        let registered: Vec<String> = TEXT_LOGS
            .iter()
            .filter(|(n, _)| *n == owner)
            .flat_map(|(_, rel)| read(rel).lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| l.contains("registered ephemeral znode") && l.contains(&sid))
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("/services/"))
                    .map(str::to_string)
            })
            .collect();
        assert!(!registered.is_empty(), "{sid}");
        let out = zk(data_dir())
            .args(["session", &sid])
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        let origin = u64::from_str_radix(sid.trim_start_matches("0x"), 16).expect("hex") >> 56;
        assert!(
            text.contains(&format!("created by server {origin}")),
            "{text}"
        );
        assert!(text.contains("createSession zxid 0x"), "{text}");
        assert!(
            text.contains(&format!("by {server} (Expiring session)")),
            "{text}"
        );
        let ended = text
            .lines()
            .find(|l| l.trim_start().starts_with("ended"))
            .expect("ended line");
        assert!(ended.contains("expired by the leader"), "{ended}");
        for p in &registered {
            assert!(
                ended.contains(p.as_str()),
                "{sid}: lost ephemeral {p} in {ended}"
            );
        }
        let closes: Vec<Value> = query(&format!("session:{sid} kind:txn.closeSession"));
        assert_eq!(closes.len(), 1, "{sid}");
        assert!(closes[0]["paths"]
            .as_array()
            .is_some_and(|a| registered.iter().all(|p| a.iter().any(|x| x == p.as_str()))));
    }
}
