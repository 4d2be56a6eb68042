//! Recipe holder timelines rebuilt from the real recordings' transaction logs (issue 14): kazoo
//! `Election` in `samples/incident-1`, Curator `LeaderLatch` in `samples/incident-2`. The
//! expectations are what the recordings' drivers and the samples' READMEs record.

use std::path::{Path, PathBuf};

use zklens::event::Event;
use zklens::recipe::{self, End, Timeline};
use zklens::source::{self, Content};

fn timelines(sample: &str) -> Vec<Timeline> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(sample);
    let (files, errors) = source::discover(&[PathBuf::from(&root)]);
    assert!(errors.is_empty(), "{errors:?}");
    let txn: Vec<_> = files
        .into_iter()
        .filter(|f| matches!(f.content, Content::TxnLog { .. }))
        .collect();
    let mut events: Vec<Event> = Vec::new();
    source::txn::read_txnlogs(&txn, &[], &mut |e| {
        events.push(e);
        Ok(())
    })
    .expect("txn logs read");
    let schemes = recipe::schemes("embedded", recipe::EMBEDDED).expect("schemes");
    recipe::timelines(&events, &schemes)
}

fn holders(t: &[Timeline], parent: &str) -> Vec<(String, Option<End>)> {
    t.iter()
        .find(|t| t.parent == parent)
        .unwrap_or_else(|| panic!("no timeline for {parent} in {t:#?}"))
        .holdings
        .iter()
        .map(|h| (h.holder.clone(), h.ended))
        .collect()
}

/// The election's story in both kazoo recordings: calc-a gives the role up (deletes its node),
/// calc-b holds until its session expires, then calc-a again.
fn calc_a_b_a(t: &[Timeline]) {
    let calc = holders(t, "/election/calc");
    assert_eq!(
        calc[..3],
        [
            ("calc-a".to_string(), Some(End::NodeDeleted)),
            ("calc-b".to_string(), Some(End::SessionExpired)),
            ("calc-a".to_string(), calc[2].1),
        ],
        "{calc:?}"
    );
}

#[test]
fn kazoo_election_holders_of_incident_1() {
    let t = timelines("incident-1");
    // calc-a leads; gives the role up when suspended (deletes its node) and calc-b takes over;
    // calc-b's session expires (SIGSTOP) and calc-a leads again until the services stop.
    calc_a_b_a(&t);
    let scheme = t
        .iter()
        .find(|t| t.parent == "/election/calc")
        .map(|t| t.scheme.as_str());
    assert_eq!(scheme, Some("kazoo-lock"));
}

#[test]
fn a_zookeeper_3_4_record_without_closesession_paths_gives_the_same_story() {
    // samples/zk34.manifest.toml: calc-a -> calc-b at the leader failover (calc-a gave the
    // role up), calc-b -> calc-a when calc-b's session 0x1a2298898dd0002 expired.
    let t = timelines("zk34");
    calc_a_b_a(&t);
    let expired = &t
        .iter()
        .find(|t| t.parent == "/election/calc")
        .map(|t| t.holdings[1].session);
    assert_eq!(*expired, Some(0x1a2298898dd0002));
}

#[test]
fn curator_leader_latch_holders_of_incident_2() {
    let t = timelines("incident-2");
    let latch: Vec<&Timeline> = t
        .iter()
        .filter(|t| t.scheme == "curator-leader-latch")
        .collect();
    assert!(!latch.is_empty(), "{t:#?}");
    // ledger-1 (the Curator service) holds the latch first.
    assert_eq!(latch[0].holdings[0].holder, "ledger-1", "{latch:#?}");
}

#[test]
fn zklens_recipes_shows_the_timelines_from_the_index() {
    let data = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-1");
    let zk = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("zklens")
            .expect("binary")
            .env_remove("ZKLENS_DATA_DIR")
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let out = zk(&["ingest", "-q", &root.to_string_lossy()]);
    assert!(out.status.success(), "{out:?}");
    let out = zk(&["recipes", "/election/calc", "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // The same story as read straight from the txn logs.
    let direct = timelines("incident-1");
    let want =
        serde_json::to_value(direct.iter().find(|t| t.parent == "/election/calc")).expect("json");
    assert_eq!(v[0], want);
    assert_eq!(v[0]["holdings"][1]["ended"], "session_expired");
    // --since/--until keep the holdings that overlap the window: calc-b until its expiry at
    // 03:39:33.301, then calc-a.
    let out = zk(&[
        "recipes",
        "/election/calc",
        "-o",
        "json",
        "--since",
        "2026-11-25 03:39:30",
        "--until",
        "2026-11-25 03:40:00",
    ]);
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let held: Vec<&str> = w[0]["holdings"]
        .as_array()
        .map(|l| l.iter().filter_map(|h| h["holder"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(held, ["calc-b", "calc-a"], "{w}");
    // Nothing under a path: exit 1, like a query that finds nothing.
    assert_eq!(zk(&["recipes", "/nothing"]).status.code(), Some(1));
}
