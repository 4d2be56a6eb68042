//! Several ensembles in one index (issue 17). `samples/fleet` holds two real ensembles, `east`
//! and `west`, recorded at the same time on one machine: both have servers `zk1`..`zk3` and
//! services `calc-a` and `calc-b`, both began at epoch 1 (their zxids collide), and their leader
//! failovers overlap in time. Ingested together, each ensemble must show exactly the incidents,
//! recipes and events it shows alone, and what the recording driver measured.

mod common;

use std::path::{Path, PathBuf};

use common::{stdout_of, zklens};
use serde_json::Value;

fn fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/fleet")
}

fn manifest() -> toml::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/fleet.manifest.toml");
    toml::from_str(&std::fs::read_to_string(&p).expect("manifest")).expect("manifest TOML")
}

fn ingest(data: &Path, paths: &[PathBuf], extra: &[&str]) {
    let out = zklens(data)
        .args(["ingest", "-q"])
        .args(extra)
        .args(paths)
        .output()
        .expect("ingest");
    stdout_of(out, "ingest");
}

/// `zklens CMD... -o json` as JSON.
fn json(data: &Path, args: &[&str]) -> Value {
    let out = zklens(data)
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("run");
    serde_json::from_slice(&stdout_of(out, &args.join(" "))).expect("JSON")
}

/// Each record as its JSON text, sorted: two lists equal as multisets.
fn records(v: &Value) -> Vec<String> {
    let mut r: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|x| x.to_string())
        .collect();
    r.sort();
    r
}

/// A JSON list of strings, sorted.
fn sorted_strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("a string").to_string())
        .collect();
    s.sort_unstable();
    s
}

fn count(data: &Path, q: &str) -> u64 {
    let out = zklens(data)
        .args(["query", q, "--count"])
        .output()
        .expect("query --count");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{q}: no count in {text:?} ({:?})", out.status))
}

#[test]
fn two_ensembles_in_one_index_show_what_each_shows_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (all, east, west, stepwise) = (
        tmp.path().join("all"),
        tmp.path().join("east"),
        tmp.path().join("west"),
        tmp.path().join("stepwise"),
    );
    let e_dir = fleet().join("ensemble=east");
    let w_dir = fleet().join("ensemble=west");
    ingest(&all, &[fleet()], &[]);
    ingest(&east, std::slice::from_ref(&e_dir), &[]);
    ingest(&west, std::slice::from_ref(&w_dir), &[]);
    // One ensemble, then the other into the same index: the second's transactions are not
    // taken for copies of the first's (same zxids).
    ingest(&stepwise, &[e_dir], &[]);
    ingest(&stepwise, &[w_dir], &[]);

    // Incidents: together = east alone + west alone, in both ways of ingesting.
    let together = json(&all, &["incidents"]);
    let mut alone = json(&east, &["incidents"]).as_array().unwrap().clone();
    alone.extend(json(&west, &["incidents"]).as_array().unwrap().clone());
    assert_eq!(records(&together), records(&Value::Array(alone)));
    assert_eq!(
        records(&together),
        records(&json(&stepwise, &["incidents"]))
    );

    // ... and they are what the driver caused, each in its own ensemble.
    let m = manifest();
    let list = together.as_array().unwrap();
    let expected = m["incident"].as_array().expect("[[incident]]");
    assert_eq!(list.len(), expected.len(), "{together:#}");
    for want in expected {
        let ens = want["ensemble"].as_str().unwrap();
        let found = list.iter().find(|i| {
            let id = i["id"].as_str().unwrap();
            i["ensemble"] == ens
                && id.ends_with(&format!("@{ens}"))
                && match (want.get("id"), want.get("id_prefix")) {
                    (Some(w), _) => id == format!("{}@{ens}", w.as_str().unwrap()),
                    (None, Some(p)) => id.starts_with(p.as_str().unwrap()),
                    _ => false,
                }
        });
        let got = found.unwrap_or_else(|| panic!("no incident {want} in {together:#}"));
        assert_eq!(got["kind"], want["kind"].as_str().unwrap());
        for k in ["old_leader", "new_leader", "old_epoch", "new_epoch"] {
            if let Some(v) = want.get(k) {
                assert_eq!(got[k], v.as_integer().unwrap(), "{k} of {got}");
            }
        }
        for k in ["sessions_expired", "ephemerals_lost"] {
            let w = serde_json::to_value(&want[k]).unwrap();
            assert_eq!(
                sorted_strings(&got[k]),
                sorted_strings(&w),
                "{k} of {}",
                got["id"]
            );
        }
        let pairs = |v: &Vec<Value>, a: &str, b: &str| -> Vec<(String, String)> {
            v.iter()
                .map(|s| (s[a].as_str().unwrap().into(), s[b].as_str().unwrap().into()))
                .collect()
        };
        let w: Vec<Value> = want["service_failovers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| serde_json::to_value(t).unwrap())
            .collect();
        assert_eq!(
            pairs(got["service_failovers"].as_array().unwrap(), "from", "to"),
            pairs(&w, "from", "to"),
            "service rows of {}",
            got["id"]
        );
    }
    // The failovers overlap in time: the second leader was killed before the first ensemble
    // had recovered, so nothing but the ensemble keeps their evidence apart.
    assert_eq!(
        m["overlap"]["second_killed_before_first_recovered"].as_bool(),
        Some(true)
    );

    // Events: each ensemble's are all there, once, under its own name and node names.
    for (name, alone) in [("east", &east), ("west", &west)] {
        let n = count(alone, "*");
        assert!(n > 1000);
        assert_eq!(count(&all, &format!("ensemble:{name}")), n, "{name}");
        assert_eq!(count(&stepwise, &format!("ensemble:{name}")), n, "{name}");
        assert_eq!(
            count(&all, &format!("ensemble:{name} AND logger:txnlog")),
            count(alone, "logger:txnlog"),
            "{name}'s transactions"
        );
        for node in ["zk1", "zk2", "zk3", "calc-a", "calc-b"] {
            assert_eq!(
                count(&all, &format!("ensemble:{name} AND node:{node}")),
                count(alone, &format!("node:{node}")),
                "{name} {node}"
            );
        }
    }
    assert_eq!(count(&all, "ensemble:default"), 0);
    // The first transaction of epoch 1 exists in both ensembles: two events, not one.
    assert_eq!(count(&all, "logger:txnlog AND zxid:0x100000001"), 2);

    // Recipes: each ensemble's election under /election/calc is its own timeline.
    let recipes = json(&all, &["recipes"]);
    let mut alone = json(&east, &["recipes"]).as_array().unwrap().clone();
    alone.extend(json(&west, &["recipes"]).as_array().unwrap().clone());
    assert_eq!(records(&recipes), records(&Value::Array(alone)));
    let ensembles: Vec<&str> = recipes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["ensemble"].as_str())
        .collect();
    assert!(ensembles.contains(&"east") && ensembles.contains(&"west"));

    // An incident's events are its ensemble's: `incident:ID` selects that ensemble's window.
    let q = "incident:leader-failover-epoch-2@west AND kind:election.*";
    let n = count(&all, q);
    assert!(n > 0);
    assert_eq!(count(&all, &format!("{q} AND ensemble:west")), n);
}

#[test]
fn the_ensemble_flag_names_files_whose_path_names_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("d");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    ingest(
        &data,
        &[samples.join("incident-3")],
        &["--ensemble", "prod-a"],
    );
    let list = json(&data, &["incidents"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"leader-failover-epoch-2@prod-a"), "{ids:?}");
    assert!(ids.iter().all(|i| i.ends_with("@prod-a")), "{ids:?}");
    // The report of one of them is found by that id.
    let out = zklens(&data)
        .args(["incident", "leader-failover-epoch-2@prod-a"])
        .output()
        .expect("incident");
    let text = String::from_utf8_lossy(&stdout_of(out, "incident")).into_owned();
    assert!(text.contains("zk3 -> zk2"), "{text}");
    // A name that cannot be a directory or part of an id is refused, with exit status 2.
    let out = zklens(&data)
        .args(["ingest", "-q", "--ensemble", "../x"])
        .arg(samples.join("incident-3"))
        .output()
        .expect("ingest");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ensemble"));
}
