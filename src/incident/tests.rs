//! Detector cases the live ensemble test (`tests/live_incidents.rs`) found, on hand-made events
//! shaped like the lines the servers logged there, so that they are checked without a JVM too.

use super::*;
use crate::event::Attrs;
use crate::time::rfc3339;

const S: i64 = 1_000_000_000;

struct Log(Vec<Event>);

impl Log {
    fn at(&mut self, secs: f64, node: &str, kind: &str, attrs: Attrs) -> &mut Event {
        let n = self.0.len() as u64;
        self.0.push(Event {
            ts: Some(1_800_000_000 * S + (secs * 1e9) as i64),
            node: node.into(),
            myid: node.trim_start_matches("zk").parse().ok(),
            source: format!("{node}.log").into(),
            offset: n,
            line: n + 1,
            level: None,
            thread: None,
            logger: None,
            message: kind.to_string(),
            kind: kind.into(),
            attrs,
            paths: Vec::new(),
            replicas: Vec::new(),
            ensemble: crate::event::default_ensemble(),
        });
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    fn took(&mut self, secs: f64, node: &str, state: &str) {
        self.at(secs, node, "election.took", state_attrs(state));
    }

    fn formed(&mut self, secs: f64, node: &str, epoch: u64) {
        self.at(
            secs,
            node,
            "quorum.formed",
            Attrs {
                zxid: Some(epoch << 32),
                ..Attrs::default()
            },
        );
    }
}

fn state_attrs(state: &str) -> Attrs {
    Attrs {
        state: Some(state.into()),
        ..Attrs::default()
    }
}

fn session_attrs(session: u64, zxid: Option<u64>) -> Attrs {
    Attrs {
        session: Some(session),
        zxid,
        timeout_ms: Some(4000),
        ..Attrs::default()
    }
}

fn timeout_attrs(ms: u64) -> Attrs {
    Attrs {
        duration_ms: Some(ms),
        ..Attrs::default()
    }
}

/// zk2 leads epoch 1 and is stalled at 8 s; zk1 and zk3 give it up at 10.5 s (one short
/// notification timeout on the way) and zk3 leads epoch 2; zk2 resumes at 15 s, expires session
/// 0xa as if no time had passed (its closeSession txn lands in its own log, epoch 1), finds it
/// has no quorum, steps down and follows zk3 by SNAP. Session 0xa really expires at 20 s (zk3,
/// committed in epoch 2). At 30 s zk3 and zk2 die: zk1's election times out for 7 s; zk3 comes
/// back and leads epoch 3 at 37 s.
fn stalled_leader() -> Vec<Event> {
    let mut l = Log(Vec::new());
    l.at(0.0, "zk1", "server.starting", Attrs::default());
    l.at(0.0, "zk2", "server.starting", Attrs::default());
    l.at(0.0, "zk3", "server.starting", Attrs::default());
    l.took(0.5, "zk2", "leading");
    l.took(0.5, "zk1", "following");
    l.took(0.5, "zk3", "following");
    l.formed(0.6, "zk2", 1);
    l.at(
        1.0,
        "zk2",
        "txn.createSession",
        session_attrs(0xa, Some(0x1_0000_0001)),
    );
    l.at(10.5, "zk1", "follower.leader_lost", Attrs::default());
    l.at(10.5, "zk3", "follower.leader_lost", Attrs::default());
    l.at(10.51, "zk1", "election.looking", state_attrs("looking"));
    l.at(10.51, "zk3", "election.looking", state_attrs("looking"));
    l.at(
        10.9,
        "zk1",
        "election.notification_timeout",
        timeout_attrs(400),
    );
    l.took(11.0, "zk3", "leading");
    l.took(11.0, "zk1", "following");
    l.at(11.05, "zk1", "sync.diff", Attrs::default());
    l.formed(11.1, "zk3", 2);
    l.at(15.0, "zk2", "learner.lost", Attrs::default());
    l.at(15.01, "zk2", "session.expired", session_attrs(0xa, None));
    l.at(
        15.02,
        "zk2",
        "txn.closeSession",
        session_attrs(0xa, Some(0x1_0000_0050)),
    )
    .paths = vec!["/stale".into()];
    l.at(15.5, "zk2", "quorum.lost", Attrs::default());
    l.at(15.5, "zk2", "leader.shutdown", Attrs::default());
    l.at(15.51, "zk2", "election.looking", state_attrs("looking"));
    l.took(15.52, "zk2", "following");
    l.at(15.53, "zk2", "sync.snap", Attrs::default());
    l.at(15.6, "zk2", "sync.uptodate", Attrs::default());
    l.at(20.0, "zk3", "session.expired", session_attrs(0xa, None));
    l.at(
        20.0,
        "zk3",
        "txn.closeSession",
        session_attrs(0xa, Some(0x2_0000_0010)),
    )
    .paths = vec!["/services/calc/calc-a".into()];
    l.at(30.0, "zk1", "follower.leader_lost", Attrs::default());
    l.at(30.01, "zk1", "election.looking", state_attrs("looking"));
    for (i, ms) in [400, 800, 1600, 3200].into_iter().enumerate() {
        l.at(
            30.5 + i as f64,
            "zk1",
            "election.notification_timeout",
            timeout_attrs(ms),
        );
    }
    l.at(36.0, "zk3", "server.starting", Attrs::default());
    l.took(36.9, "zk3", "leading");
    l.took(36.9, "zk1", "following");
    l.formed(37.0, "zk3", 3);
    l.0
}

fn defs() -> Definitions {
    let none: [&str; 0] = [];
    Definitions::load(&none).expect("embedded definitions")
}

fn find<'a>(all: &'a [Incident], id: &str) -> &'a Incident {
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    all.iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no {id} among {ids:?}"))
}

#[test]
fn a_stalled_leader_is_a_failover_that_ends_with_it_stepping_down() {
    let all = detect(&stalled_leader(), &defs());
    let f = find(&all, "leader-failover-epoch-2").record();
    assert_eq!((f.old_leader, f.new_leader), (Some(2), Some(3)));
    assert_eq!((f.old_epoch, f.new_epoch), (Some(1), Some(2)));
    assert_eq!(f.started_at, rfc3339(1_800_000_010 * S + S / 2));
    // Its resumed expiry is not an expiry: nothing committed it.
    assert!(f.sessions_expired.is_empty(), "{f:?}");
    assert!(f.ephemerals_lost.is_empty(), "{f:?}");
    assert_eq!(f.unconfirmed.len(), 1, "{f:?}");
    assert!(f.unconfirmed[0].contains("0xa"), "{f:?}");
    // It steps down and follows by SNAP, as steps of the failover.
    assert_eq!(f.sync.get("zk2").map(String::as_str), Some("snap"));
    assert!(f
        .steps
        .iter()
        .any(|s| s.node == "zk2" && s.kind == "quorum.lost"));
    // One 400 ms notification timeout is a slow election, not a quorum loss.
    assert!(!all.iter().any(|i| i.id == "quorum-loss-epoch-2"));
}

#[test]
fn a_stalled_leaders_step_down_is_not_the_next_failovers_start() {
    let all = detect(&stalled_leader(), &defs());
    let q = find(&all, "quorum-loss-epoch-3").record();
    assert_eq!(q.started_at, rfc3339(1_800_000_030 * S));
    assert_eq!(q.unavailable_ms, Some(7000));
    let f = find(&all, "leader-failover-epoch-3").record();
    assert_eq!(f.started_at, q.started_at);
    assert!(f.sessions_expired.is_empty(), "{f:?}");
}

#[test]
fn a_session_expired_later_for_real_is_its_own_incident_with_the_committed_close() {
    let all = detect(&stalled_leader(), &defs());
    let x = find(&all, "session-expiry-0xa").record();
    assert_eq!(x.started_at, rfc3339(1_800_000_020 * S));
    assert_eq!(x.ephemerals_lost, vec!["/services/calc/calc-a".to_string()]);
    assert_eq!(x.old_leader, Some(3));
}

#[test]
fn a_resumed_leaders_rejoin_starts_when_it_leaves_its_role() {
    let all = detect(&stalled_leader(), &defs());
    let r: Vec<Record<'_>> = all
        .iter()
        .filter(|i| i.kind() == IncidentKind::ServerRejoin)
        .map(Incident::record)
        .collect();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].server, Some("zk2"));
    assert_eq!(r[0].started_at, rfc3339(1_800_000_015 * S + S / 2));
    assert_eq!(r[0].sync.get("zk2").map(String::as_str), Some("snap"));
}

/// `pattern` (a kind or `prefix.*`) covers `kind` (a kind or `prefix.*`).
fn covers(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

#[test]
fn the_default_needs_are_the_skeleton_the_engine_always_loaded() {
    // The load query before detectors declared their kinds (a hard-coded string).
    let skeleton = [
        "server.starting",
        "sync.uptodate",
        "election.*",
        "quorum.*",
        "follower.*",
        "observer.*",
        "leader.*",
        "learner.lost",
        "sync.diff",
        "sync.snap",
        "sync.trunc",
        "session.expired",
        "txn.closeSession",
        "txn.createSession",
        "service.role",
        "client.session_expired",
        // The recipes' transactions (services' primaries from the record, issue 14).
        "txn.create",
        "txn.create2",
        "txn.delete",
        "snapshot.session",
    ];
    let n = needs(&defs());
    for k in &n.kinds {
        assert!(skeleton.iter().any(|p| covers(p, k)), "{k} is new");
    }
    for p in skeleton {
        assert!(n.kinds.iter().any(|k| covers(k, p)), "{p} is not read");
    }
    assert_eq!(n.windowed, vec!["client.connected".to_string()]);
}

#[test]
fn needs_include_the_kinds_an_overridden_definition_names() {
    let mut d = defs();
    assert!(!needs(&d)
        .kinds
        .iter()
        .any(|k| covers(k, "peer.unreachable")));
    d.failover.loss_kinds.push("peer.unreachable".into());
    d.quorum.evidence_kinds.push("admin.command".into());
    let n = needs(&d);
    assert!(n.kinds.iter().any(|k| k == "peer.unreachable"), "{n:?}");
    assert!(n.kinds.iter().any(|k| k == "admin.command"), "{n:?}");
}

#[test]
fn a_loss_kind_named_by_an_override_starts_the_failover() {
    let mut events = stalled_leader();
    let mut l = Log(Vec::new());
    l.at(10.25, "zk1", "peer.unreachable", Attrs::default());
    events.extend(l.0);
    let shipped = detect(&events, &defs());
    let f = find(&shipped, "leader-failover-epoch-2");
    assert_eq!(f.steps[0].kind, "follower.leader_lost");
    let mut d = defs();
    d.failover.loss_kinds.push("peer.unreachable".into());
    let tuned = detect(&events, &d);
    let f = find(&tuned, "leader-failover-epoch-2");
    assert_eq!(f.steps[0].kind, "peer.unreachable");
    assert_eq!(f.started_at, rfc3339(1_800_000_010 * S + S / 4));
}

#[test]
fn a_definition_with_an_unknown_key_is_a_format_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("election-storm.toml"),
        "[incident]\nwindow_ms = 600000\nmin_failovers = 2\nwindow_sm = 3\n",
    )
    .expect("write");
    match Definitions::load(&[dir.path()]) {
        Err(crate::Error::Format { origin, reason }) => {
            assert!(origin.ends_with("election-storm.toml"), "{origin}");
            assert!(reason.contains("window_sm"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A missing one is refused too: no value falls back to a constant in the code.
    std::fs::write(
        dir.path().join("election-storm.toml"),
        "[incident]\nwindow_ms = 600000\n",
    )
    .expect("write");
    assert!(matches!(
        Definitions::load(&[dir.path()]),
        Err(crate::Error::Format { reason, .. }) if reason.contains("min_failovers")
    ));
    std::fs::write(
        dir.path().join("election-storm.toml"),
        "[incident]\nwindow_ms = 600000\nmin_failovers = 2\n",
    )
    .expect("write");
    let d = Definitions::load(&[dir.path()]).expect("valid");
    assert_eq!(d.storm.min_failovers, 2);
}

#[test]
fn incidents_serialize_as_the_flat_record_in_its_key_order() {
    let keys = [
        "\"id\":",
        "\"kind\":",
        "\"started_at\":",
        "\"ended_at\":",
        "\"old_leader\":",
        "\"new_leader\":",
        "\"old_epoch\":",
        "\"new_epoch\":",
        "\"election_ms\":",
        "\"sync\":",
        "\"sessions_expired\":",
        "\"ephemerals_lost\":",
        "\"service_failovers\":",
        "\"sessions_moved\":",
        "\"steps\":",
        "\"unconfirmed\":",
    ];
    let all = detect(&stalled_leader(), &defs());
    let kinds: std::collections::BTreeSet<IncidentKind> = all.iter().map(|i| i.kind()).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}"); // failover, quorum loss, rejoin, expiry
    for i in &all {
        let j = serde_json::to_string(i).expect("json");
        let at: Vec<usize> = keys
            .iter()
            .map(|k| j.find(k).unwrap_or_else(|| panic!("{k} not in {j}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{j}");
        assert!(j.starts_with(&format!("{{\"id\":\"{}\",\"kind\":\"{}\"", i.id, i.kind())));
        let v: serde_json::Value = serde_json::from_str(&j).expect("json");
        assert_eq!(
            v.get("unavailable_ms").is_some(),
            i.kind() == IncidentKind::QuorumLoss
        );
        assert_eq!(
            v.get("server").is_some(),
            i.kind() == IncidentKind::ServerRejoin
        );
    }
    let x = find(&all, "session-expiry-0xa");
    let v = serde_json::to_value(x).expect("json");
    assert_eq!(v["sessions_expired"], serde_json::json!(["0xa"]));
    assert_eq!(v["old_leader"], 3);
    assert_eq!(v["new_leader"], serde_json::Value::Null);
}

#[test]
fn a_takeover_worded_in_capitals_is_a_service_failover() {
    let mut l = Log(Vec::new());
    let role = |s: &str| Attrs {
        state: Some(s.into()),
        ..Attrs::default()
    };
    l.at(1.0, "calc-a", "service.role", role("primary")).logger = Some("calc".into());
    l.at(2.0, "calc-b", "service.role", role("PRIMARY")).logger = Some("calc".into());
    let ev: Vec<&Event> = l.0.iter().collect();
    let f = super::services::service_failovers_from_logs(&ev);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[1].0.from.as_deref(), Some("calc-a"));
    assert_eq!(f[1].0.to, "calc-b");
}

/// A kazoo `Lock` at /locks/jobs: jobs-a holds, jobs-b waits. jobs-a's session expires at
/// 10 s (committed closeSession), jobs-b takes over and says so at 10.2 s; jobs-a, stalled,
/// resumes and keeps claiming PRIMARY at 12-13 s: the record contradicts it. jobs-b writes at
/// 14 s.
fn split_brain() -> Vec<Event> {
    let (a, b) = (0x1000_0000_0000_00a1_u64, 0x2000_0000_0000_00b2_u64);
    let lock = |n: u32| format!("/locks/jobs/{}__lock__{n:010}", "c".repeat(32));
    let mut l = Log(Vec::new());
    let txn = |l: &mut Log, secs: f64, kind: &str, s: u64, zxid: u64, path: &str, data: &str| {
        let e = l.at(
            secs,
            "zk1",
            kind,
            Attrs {
                session: Some(s),
                zxid: Some(zxid),
                path: Some(path.to_string()),
                state: Some("ephemeral".into()),
                ..Attrs::default()
            },
        );
        e.message = format!(
            "session 0x{s:x} cxid 0x2 zxid 0x{zxid:x} create {path},{data},[31,s{{'world,'anyone}}"
        );
    };
    txn(
        &mut l,
        1.0,
        "txn.create",
        a,
        0x1_0000_0001,
        "/services/jobs/jobs-a",
        "{}",
    );
    txn(
        &mut l,
        1.1,
        "txn.create",
        a,
        0x1_0000_0002,
        &lock(0),
        "jobs-a",
    );
    txn(
        &mut l,
        2.0,
        "txn.create",
        b,
        0x1_0000_0003,
        "/services/jobs/jobs-b",
        "{}",
    );
    txn(
        &mut l,
        2.1,
        "txn.create",
        b,
        0x1_0000_0004,
        &lock(1),
        "jobs-b",
    );
    let claim = |l: &mut Log, secs: f64, node: &str, s: u64| {
        l.at(
            secs,
            node,
            "service.role",
            Attrs {
                session: Some(s),
                state: Some("PRIMARY".into()),
                ..Attrs::default()
            },
        )
        .logger = Some("jobs".into());
    };
    claim(&mut l, 1.2, "jobs-a", a);
    l.at(10.0, "zk1", "session.expired", session_attrs(a, None));
    let c = l.at(
        10.001,
        "zk1",
        "txn.closeSession",
        Attrs {
            session: Some(a),
            zxid: Some(0x1_0000_0010),
            state: Some("expired".into()),
            ..Attrs::default()
        },
    );
    c.paths = vec!["/services/jobs/jobs-a".into(), lock(0)];
    claim(&mut l, 10.201, "jobs-b", b);
    for t in [12.0, 12.5, 13.0] {
        claim(&mut l, t, "jobs-a", a);
    }
    // The record goes on (claims after its last transaction are not judged).
    txn(
        &mut l,
        14.0,
        "txn.create",
        b,
        0x1_0000_0011,
        "/data/jobs/out",
        "done",
    );
    l.0
}

#[test]
fn an_expiry_s_service_row_comes_from_the_record_and_a_stale_claim_is_a_warning() {
    let all = detect(&split_brain(), &defs());
    let x = find(&all, "session-expiry-0x10000000000000a1");
    let r = x.record();
    assert_eq!(r.service_failovers.len(), 1, "{:?}", r.service_failovers);
    let f = &r.service_failovers[0];
    assert_eq!(
        (
            f.service.as_str(),
            f.from.as_deref(),
            f.to.as_str(),
            f.source.as_str()
        ),
        ("jobs", Some("jobs-a"), "jobs-b", "record")
    );
    assert_eq!(f.recipe.as_deref(), Some("/locks/jobs"));
    assert_eq!(f.ended, Some(crate::recipe::End::SessionExpired));
    assert_eq!(f.deleted_zxid.as_deref(), Some("0x100000010"));
    assert_eq!(f.takeover_zxid.as_deref(), Some("0x100000010"));
    // jobs-b said so 200 ms after the closeSession.
    assert_eq!(f.gap_ms, Some(200));
    assert!(
        f.noticed
            .iter()
            .any(|n| n.instance == "jobs-b" && n.after_ms == 200 && n.said == "PRIMARY"),
        "{:?}",
        f.noticed
    );
    // jobs-a's three claims after it lost the lock are one warning naming the real holder.
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let w = &r.warnings[0];
    for want in [
        "jobs-a",
        "3 times",
        "jobs-b held /locks/jobs",
        "session expired",
    ] {
        assert!(w.contains(want), "{want:?} not in {w}");
    }
    assert!(r
        .steps
        .iter()
        .any(|s| s.node == "jobs-a" && s.summary.contains("split brain")));
}

#[test]
fn without_the_txn_logs_the_rows_come_from_the_services_lines() {
    let ev: Vec<Event> = split_brain()
        .into_iter()
        .filter(|e| !e.kind.starts_with("txn.create"))
        .collect();
    let all = detect(&ev, &defs());
    let r = find(&all, "session-expiry-0x10000000000000a1").record();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(
        r.service_failovers
            .iter()
            .any(|f| f.source == "logs" && f.to == "jobs-b" && f.from.as_deref() == Some("jobs-a")),
        "{:?}",
        r.service_failovers
    );
}
