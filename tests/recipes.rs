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

// ---- samples/incident-3: Curator LeaderSelector + ServiceDiscovery (silent about its role), a
// naive kazoo Lock holder that keeps claiming PRIMARY after its session expired. Every
// expectation is what record-incident-3.py measured on the ensemble (samples/incident-3.manifest.toml).

fn incident_3_manifest() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-3.manifest.toml");
    let text = std::fs::read_to_string(&p).expect("manifest");
    let v: toml::Value = toml::from_str(&text).expect("toml");
    serde_json::to_value(v).expect("json")
}

/// `samples/incident-3` ingested into a fresh index; runs `zklens ARGS` against it.
struct Indexed(tempfile::TempDir);

impl Indexed {
    fn new() -> Indexed {
        let data = tempfile::tempdir().expect("tempdir");
        let i = Indexed(data);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-3");
        let out = i.run(&["ingest", "-q", &root.to_string_lossy()]);
        assert!(out.status.success(), "{out:?}");
        i
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        assert_cmd::Command::cargo_bin("zklens")
            .expect("binary")
            .env_remove("ZKLENS_DATA_DIR")
            .arg("--data-dir")
            .arg(self.0.path())
            .args(args)
            .output()
            .expect("runs")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

#[test]
fn incident_3_holders_are_the_ones_the_driver_saw() {
    let m = incident_3_manifest();
    let idx = Indexed::new();
    let got = idx.json(&["recipes", "-o", "json"]);
    let recipes = m["recipe"].as_array().expect("[[recipe]]");
    assert_eq!(recipes.len(), 2);
    for want in recipes {
        let parent = s(want, "parent");
        let t = got
            .as_array()
            .and_then(|l| l.iter().find(|t| t["parent"] == parent))
            .unwrap_or_else(|| panic!("no timeline for {parent} in {got}"));
        assert_eq!(t["service"], want["service"], "{parent}");
        assert_eq!(t["scheme"], want["scheme"], "{parent}");
        let (g, w) = (
            t["holdings"].as_array().expect("holdings"),
            want["holdings"].as_array().expect("holdings"),
        );
        assert_eq!(g.len(), w.len(), "{parent}: {g:#?}");
        for (g, w) in g.iter().zip(w) {
            // The pay instances' node data is Curator's default (the host's address, the same
            // for both): the holder is named by its ServiceDiscovery registration.
            assert_eq!(g["holder"], w["holder"], "{parent}: {g}");
            assert_eq!(g["session"], w["session"], "{parent}: {g}");
            assert_eq!(g["znode"], w["znode"], "{parent}: {g}");
            assert_eq!(g["from_zxid"], w["since_zxid"], "{parent}: {g}");
            assert_eq!(g["until_zxid"], w["until_zxid"], "{parent}: {g}");
            assert_eq!(g["ended"], w["until"], "{parent}: {g}");
            assert_eq!(g["from"], w["since"], "{parent}: {g}");
        }
    }
    // The naive jobs-a's claims after its session expired: a warning on /locks/jobs.
    let jobs = got
        .as_array()
        .and_then(|l| l.iter().find(|t| t["parent"] == "/locks/jobs"))
        .expect("jobs");
    let w = jobs["warnings"].as_array().expect("warnings");
    assert_eq!(w.len(), 1, "{w:?}");
    let pay = got
        .as_array()
        .and_then(|l| l.iter().find(|t| t["parent"] == "/election/pay"))
        .expect("pay");
    assert!(pay.get("warnings").is_none(), "{pay}");
}

#[test]
fn incident_3_service_rows_come_from_the_record_even_for_silent_services() {
    let m = incident_3_manifest();
    let silent: Vec<&str> = m["silent"]
        .as_array()
        .expect("silent")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(silent, ["pay-a", "pay-b"]);
    let idx = Indexed::new();
    let all = idx.json(&["incidents", "-o", "json"]);
    let all = all.as_array().expect("incidents");
    let mut rows = 0;
    for want in m["incident"].as_array().expect("[[incident]]") {
        let Some(id) = want["id"].as_str() else {
            continue;
        };
        let inc = all
            .iter()
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("no {id} among {all:?}"));
        let got = inc["service_failovers"].as_array().expect("rows");
        let wanted = want["service_failovers"].as_array().expect("rows");
        assert_eq!(got.len(), wanted.len(), "{id}: {got:#?}");
        for (g, w) in got.iter().zip(wanted) {
            assert_eq!(
                (&g["service"], &g["from"], &g["to"]),
                (&w["service"], &w["from"], &w["to"]),
                "{id}"
            );
            assert_eq!(g["source"], "record", "{id}: {g}");
            // The zxid that removed the old holder's znode is the one that made the new one
            // the holder (it was next in line), as the driver read it from the parent's pzxid.
            assert_eq!(g["deleted_zxid"], w["zxid"], "{id}: {g}");
            assert_eq!(g["takeover_zxid"], w["zxid"], "{id}: {g}");
            assert_eq!(g["at"], w["at"], "{id}: {g}");
            if silent.contains(&s(g, "to")) {
                // Nothing the pay instances log says when they noticed: no gap is invented.
                assert!(g.get("gap_ms").is_none(), "{id}: {g}");
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 3);
    // jobs-b said it took over: the gap is that line's delay after the closeSession.
    let jobs = all
        .iter()
        .flat_map(|i| i["service_failovers"].as_array().into_iter().flatten())
        .find(|f| f["service"] == "jobs")
        .expect("jobs row");
    let gap = jobs["gap_ms"].as_u64().expect("gap");
    assert!(gap < 1000, "{jobs}");
}

#[test]
fn incident_3_split_brain_is_a_warning_in_the_expiry_that_caused_it() {
    let m = incident_3_manifest();
    let sb = &m["split_brain"][0];
    let idx = Indexed::new();
    let all = idx.json(&["incidents", "-o", "json"]);
    let all = all.as_array().expect("incidents");
    // The expiry of jobs-a's session, the one whose lock it kept claiming.
    let session = m["session"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|x| x["instance"] == sb["instance"] && x["ended"] == "session_expired")
        })
        .map(|x| s(x, "session").to_string())
        .expect("jobs-a's expired session");
    let warned: Vec<&str> = all
        .iter()
        .filter(|i| i["warnings"].as_array().is_some_and(|w| !w.is_empty()))
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(warned, [format!("session-expiry-{session}").as_str()]);
    let inc = all
        .iter()
        .find(|i| i["id"] == format!("session-expiry-{session}").as_str())
        .expect("expiry");
    let w = inc["warnings"][0].as_str().expect("warning");
    let claims = format!("{} times", sb["claims"].as_i64().expect("claims"));
    for want in [
        s(sb, "instance"),
        &claims,
        s(sb, "first_claim"),
        s(sb, "last_claim"),
        &format!("{} held /locks/jobs", s(sb, "holder_meanwhile")),
    ] {
        assert!(w.contains(want), "{want:?} not in {w}");
    }
    // The text post-mortem says it too.
    let out = idx.run(&["incident", &format!("session-expiry-{session}")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WARNING: split brain?"), "{text}");
}

#[test]
fn holders_created_before_the_txn_logs_read_come_from_a_snapshot() {
    // As if the ensemble had purged its transaction logs up to zk2's snapshot.100000016 of
    // samples/incident-3: the four candidates were created before it (czxids 0x100000008 to
    // 0x100000013), so only the snapshot knows them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-3");
    let (files, errors) = source::discover(&[PathBuf::from(&root)]);
    assert!(errors.is_empty(), "{errors:?}");
    let snap_zxid = 0x1_0000_0016_u64;
    let mut events: Vec<Event> = Vec::new();
    let txn: Vec<_> = files
        .iter()
        .filter(|f| matches!(f.content, Content::TxnLog { .. }))
        .cloned()
        .collect();
    source::txn::read_txnlogs(&txn, &[], &mut |e| {
        if e.attrs.zxid.is_some_and(|z| z > snap_zxid) {
            events.push(e);
        }
        Ok(())
    })
    .expect("txn logs read");
    let snap = files
        .iter()
        .find(|f| f.path.ends_with("zk2/data/version-2/snapshot.100000016.gz"))
        .expect("zk2's snapshot");
    source::txn::read_snapshot(snap, &mut |e| {
        events.push(e);
        Ok(())
    })
    .expect("snapshot read");
    let schemes = recipe::schemes("embedded", recipe::EMBEDDED).expect("schemes");
    let cut = recipe::timelines(&events, &schemes);
    let full = timelines("incident-3");
    for parent in ["/election/pay", "/locks/jobs"] {
        let (c, f) = (
            cut.iter().find(|t| t.parent == parent).expect("cut"),
            full.iter().find(|t| t.parent == parent).expect("full"),
        );
        assert_eq!(c.holdings.len(), f.holdings.len(), "{parent}: {c:#?}");
        // The first holder is known from the snapshot on; everything after is the same story.
        let first = &c.holdings[0];
        assert!(first.from_snapshot, "{first:?}");
        assert_eq!(first.from_zxid, snap_zxid);
        assert_eq!(
            (
                &first.holder,
                first.session,
                &first.znode,
                first.until_zxid,
                first.ended
            ),
            (
                &f.holdings[0].holder,
                f.holdings[0].session,
                &f.holdings[0].znode,
                f.holdings[0].until_zxid,
                f.holdings[0].ended
            )
        );
        assert_eq!(c.holdings[1..], f.holdings[1..], "{parent}");
    }
}
