//! The benchmark corpus generator (`zklens corpus`): what its manifest promises is in the files
//! (sizes, lines, probes), it is deterministic, and zklens finds what was embedded: every
//! failover at its time with its leaders, epoch and expired sessions, and the probe ids with as
//! many events as raw lines name them.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use serde_json::Value;

mod common;
use common::zklens;

fn generate(out: &Path, profile: &str) -> Value {
    zklens(&out.join("unused"))
        .arg("corpus")
        .arg(out)
        .args([
            "--size",
            "4MB",
            "--failover-every",
            "10",
            "--profile",
            profile,
        ])
        .assert()
        .success();
    let text = std::fs::read_to_string(out.join(".manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

fn files(m: &Value) -> Vec<(String, u64)> {
    m["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f[0].as_str().expect("path").to_string(),
                f[1].as_u64().expect("size"),
            )
        })
        .collect()
}

/// Lines of the corpus naming `id` as a whole word (not as the prefix of a longer id).
fn raw_lines_naming(dir: &Path, m: &Value, id: &str) -> usize {
    let re = Regex::new(&format!(r"\b{}\b", regex::escape(id))).expect("regex");
    files(m)
        .iter()
        .map(|(f, _)| {
            let text = std::fs::read_to_string(dir.join(f)).expect("read");
            text.lines().filter(|l| re.is_match(l)).count()
        })
        .sum()
}

/// A JSON array of strings as a set.
fn strings(v: &Value) -> BTreeSet<&str> {
    v.as_array()
        .expect("an array")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn count(data: &Path, args: &[&str]) -> usize {
    let out = zklens(data)
        .args(args)
        .arg("--count")
        .output()
        .expect("run");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

#[test]
fn corpus_keeps_its_manifest_and_zklens_finds_what_was_embedded() {
    check("classic");
}

/// The mixed profile (issue 16's corpus closer to reality): the same promises, and what makes it
/// mixed is there: rotated server logs, many small service files, one node per service across
/// its files, sessions by the hundred thousand, lines no rule knows.
#[test]
fn the_mixed_corpus_keeps_its_promises_too() {
    let (tmp, m) = check("mixed");
    let names: Vec<String> = files(&m).into_iter().map(|f| f.0).collect();
    assert!(
        names.iter().any(|f| f.ends_with("zookeeper.log.1")),
        "{names:?}"
    );
    assert!(names.len() >= 100, "{} files", names.len());
    assert!(names.iter().any(|f| f.ends_with("gc.log")), "{names:?}");
    // 4 MB: about 27,000 entries, a session replaced every 3.
    assert!(m["sessions"].as_u64().expect("sessions") > 15_000, "{m}");
    // One node per server and per service, however many files each wrote.
    let out = zklens(&tmp.path().join("data"))
        .arg("sources")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let nodes: BTreeSet<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected: BTreeSet<String> = (1..=5)
        .map(|i| format!("zk{i}"))
        .chain((1..=6).map(|i| format!("svc-{i}")))
        .collect();
    assert_eq!(
        nodes,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{text}"
    );
}

/// Generates a corpus of `profile`, checks what its manifest promises and what zklens finds in
/// it; returns the temporary directory (corpus in `corpus/`, index in `data/`) and the manifest.
fn check(profile: &str) -> (tempfile::TempDir, Value) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("corpus");
    let m = generate(&dir, profile);

    // Sizes and lines as the manifest says; the same seed writes the same bytes.
    let mut lines = 0;
    for (f, size) in files(&m) {
        let bytes = std::fs::read(dir.join(&f)).expect("read");
        assert_eq!(bytes.len() as u64, size, "{f}");
        lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    assert_eq!(lines, m["lines"].as_u64().expect("lines"));
    let again = tmp.path().join("again");
    generate(&again, profile);
    for (f, _) in files(&m) {
        assert!(
            std::fs::read(dir.join(&f)).expect("read")
                == std::fs::read(again.join(&f)).expect("read"),
            "{f} differs between two runs with the same seed"
        );
    }

    let data = tmp.path().join("data");
    zklens(&data).arg("ingest").arg(&dir).assert().success();

    // The probes: as many events as raw lines name them, and at least one.
    for (cmd, key) in [("session", "probe_session"), ("zxid", "probe_zxid")] {
        let id = m[key].as_str().expect("probe");
        let raw = raw_lines_naming(&dir, &m, id);
        assert!(raw > 0, "{key} {id} is in no line of the corpus");
        assert_eq!(count(&data, &[cmd, id]), raw, "{cmd} {id}");
    }

    // Every embedded failover, found at its time with its leaders, epoch and expiries. The logs
    // begin inside epoch 1, so the first failover's old leader is not in them.
    let out = zklens(&data)
        .args(["incidents", "-o", "json"])
        .output()
        .expect("run");
    let incidents: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let failovers = m["failovers"].as_array().expect("failovers");
    assert!(failovers.len() >= 2, "{failovers:?}");
    for (k, f) in failovers.iter().enumerate() {
        let epoch = f["new_epoch"].as_u64().expect("epoch");
        let id = format!("leader-failover-epoch-{epoch}");
        let inc = incidents
            .iter()
            .find(|i| i["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no {id}; found {incidents:#?}"));
        assert_eq!(inc["started_at"], f["at"], "{id}");
        assert_eq!(inc["new_leader"], f["new_leader"], "{id}");
        assert_eq!(inc["old_epoch"].as_u64(), Some(epoch - 1), "{id}");
        if k == 0 {
            assert!(inc["old_leader"].is_null(), "{id}: {}", inc["old_leader"]);
        } else {
            assert_eq!(inc["old_leader"], f["old_leader"], "{id}");
        }
        assert_eq!(
            strings(&inc["sessions_expired"]),
            strings(&f["sessions_expired"]),
            "{id}"
        );
    }
    // And no failover that was not embedded.
    let found = incidents
        .iter()
        .filter(|i| i["kind"] == "leader-failover")
        .count();
    assert_eq!(found, failovers.len());
    (tmp, m)
}
