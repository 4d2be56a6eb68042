//! Logs nobody here wrote (issue 13, part 6): samples recorded on a real ensemble by
//! `samples/record/record-incident-2.py`, every file written by a real logger in a layout zklens
//! does not ship, held to the manifest the recording wrote beside each sample
//! (`samples/NAME.manifest.toml`: each file's node, logger and layout; the facts read back from
//! the files with their `file:line`; the incidents the driver caused, measured on the ensemble).
//!
//! - `incident-2`: ZooKeeper 3.8 servers in three log4j layouts (ISO 8601 `T` with a zone;
//!   thread first; upstream), kazoo services with Python's `[%(threadName)s]` (`Thread-3
//!   (zk_loop)`), structlog and python-json-logger JSON, a kazoo service through rsyslogd
//!   (`Nov 29 22:52:12 localhost audit-1[123]: ...`), a Curator service through logback with
//!   thread names containing spaces, and the flat folder `apps/` (calc-a, calc-b, display-1).
//! - `zk34`: a ZooKeeper 3.4.6 ensemble (3.4's own wording) with two kazoo services.
//! - `incident-3` (`record-incident-3.py`): recipes. Curator `LeaderSelector` services registered
//!   through Curator's `ServiceDiscovery` that log nothing about their role, and naive kazoo
//!   `Lock` holders (one keeps claiming PRIMARY after its session expired). Its recipe
//!   expectations are checked in `tests/recipes.rs`.
//!
//! Nothing here is derived from zklens's own output: the expectations are the manifest's.
//! Each test gathers every mismatch and fails once with the whole list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};

mod common;
use common::{stdout_of, zklens};

/// Share of a file's entries that must carry a timestamp (issue 13: below it, a warning).
const MIN_TIMESTAMPED: f64 = 0.95;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// The manifest of a sample, as JSON.
fn manifest(sample: &str) -> Value {
    let p = samples().join(format!("{sample}.manifest.toml"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let t: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::to_value(t).expect("manifest as JSON")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .timestamp_millis()
}

/// `samples/NAME` ingested once per test binary (a fresh data dir per sample).
fn ingested(sample: &str) -> &'static Path {
    static INCIDENT_2: OnceLock<tempfile::TempDir> = OnceLock::new();
    static ZK34: OnceLock<tempfile::TempDir> = OnceLock::new();
    static INCIDENT_3: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cell = match sample {
        "incident-2" => &INCIDENT_2,
        "zk34" => &ZK34,
        "incident-3" => &INCIDENT_3,
        _ => panic!("no sample {sample}"),
    };
    cell.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        let out = zklens(d.path())
            .arg("ingest")
            .arg(samples().join(sample))
            .output()
            .expect("run ingest");
        stdout_of(out, &format!("ingest samples/{sample}"));
        d
    })
    .path()
}

/// The sample's files that hold log lines (not txn logs, snapshots, myid or epoch files).
fn log_files(m: &Value) -> Vec<&Value> {
    list(m, "file")
        .iter()
        .filter(|f| f["timestamped"].as_bool() == Some(true))
        .collect()
}

// ---- every entry of every file has its time -------------------------------------------------------

/// `zklens parse -o jsonl FILE` for each log file: at least 95% of its entries have a timestamp.
fn every_log_file_is_timestamped(sample: &str) {
    let m = manifest(sample);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let files = log_files(&m);
    assert!(!files.is_empty(), "{sample}: no log files in the manifest");
    for f in files {
        let rel = text(f, "path");
        let path = samples().join(sample).join(rel);
        let out = zklens(tmp.path())
            .args(["parse", "-o", "jsonl"])
            .arg(&path)
            .output()
            .expect("run parse");
        if !out.status.success() {
            failures.push(format!(
                "{rel}: parse failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let mut entries = 0usize;
        let mut timed = 0usize;
        let mut first_untimed = None;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let e: Value = serde_json::from_str(line).unwrap_or_else(|err| {
                panic!("{rel}: parse printed a line that is not JSON ({err}): {line}")
            });
            entries += 1;
            if e["ts"].is_string() {
                timed += 1;
            } else if first_untimed.is_none() {
                first_untimed = Some(e["message"].to_string());
            }
        }
        let share = if entries == 0 {
            0.0
        } else {
            timed as f64 / entries as f64
        };
        if entries == 0 || share < MIN_TIMESTAMPED {
            failures.push(format!(
                "{rel} ({}): {timed} of {entries} entries timestamped ({:.0}%), first without: {}",
                text(f, "layout"),
                share * 100.0,
                first_untimed.unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{sample}: files below {:.0}% timestamped entries:\n{}",
        MIN_TIMESTAMPED * 100.0,
        failures.join("\n")
    );
}

#[test]
fn incident_2_every_log_file_is_timestamped() {
    every_log_file_is_timestamped("incident-2");
}

#[test]
fn zk34_every_log_file_is_timestamped() {
    every_log_file_is_timestamped("zk34");
}

#[test]
fn incident_3_every_log_file_is_timestamped() {
    every_log_file_is_timestamped("incident-3");
}

// ---- the node of every file -------------------------------------------------------------------

/// (node, format, path) of every source in the index: `sources -o json` (the `Indexed` answer:
/// `{"events", "sources": [{"node", "format", "events", "offset", "path"}]}`) when the binary
/// has it, else the text table (node first, path last).
fn sources(data: &Path) -> Vec<(String, String, String)> {
    let out = zklens(data)
        .args(["sources", "-o", "json"])
        .output()
        .expect("run sources");
    if out.status.success() {
        let v: Value = serde_json::from_slice(&out.stdout).expect("sources -o json is JSON");
        let rows = v["sources"].as_array().or(v.as_array()).cloned();
        return rows
            .unwrap_or_else(|| panic!("no sources array in {v}"))
            .iter()
            .map(|s| {
                (
                    text(s, "node").to_string(),
                    s["format"].as_str().unwrap_or("").to_string(),
                    text(s, "path").to_string(),
                )
            })
            .collect();
    }
    let out = zklens(data).arg("sources").output().expect("run sources");
    let stdout = String::from_utf8(stdout_of(out, "sources")).expect("utf-8");
    stdout
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // Rows: NODE FORMAT COUNT events|merged ... PATH; the summary line has fewer.
            (cols.len() >= 4 && cols.last()?.contains('/')).then(|| {
                (
                    cols[0].to_string(),
                    cols[1].to_string(),
                    cols[cols.len() - 1].to_string(),
                )
            })
        })
        .collect()
}

/// After ingesting the sample directory, every file is listed under the node the manifest gives
/// it (the path component that tells it apart: `apps/calc-a.log` → `calc-a`).
fn ingest_names_every_file_s_node(sample: &str) {
    let m = manifest(sample);
    let rows = sources(ingested(sample));
    let mut failures = Vec::new();
    let mut checked = 0;
    for f in list(&m, "file") {
        let kind = text(f, "kind");
        if !matches!(
            kind,
            "zookeeper-log" | "service-log" | "txnlog" | "snapshot"
        ) {
            continue; // myid and epoch files are not sources
        }
        let rel = text(f, "path");
        let want = text(f, "node");
        let suffix = format!("/{sample}/{rel}");
        match rows.iter().find(|(_, _, p)| p.ends_with(&suffix)) {
            None => failures.push(format!("{rel}: not among the sources")),
            Some((node, format, _)) if node != want => {
                failures.push(format!("{rel} ({format}): node {node}, expected {want}"))
            }
            Some(_) => {}
        }
        checked += 1;
    }
    assert!(checked > 0, "{sample}: no files checked");
    assert!(
        failures.is_empty(),
        "{sample}: wrong nodes:\n{}",
        failures.join("\n")
    );
}

#[test]
fn incident_2_ingest_names_every_file_s_node() {
    ingest_names_every_file_s_node("incident-2");
}

#[test]
fn zk34_ingest_names_every_file_s_node() {
    ingest_names_every_file_s_node("zk34");
}

#[test]
fn incident_3_ingest_names_every_file_s_node() {
    ingest_names_every_file_s_node("incident-3");
}

// ---- the lines the recording read back are classified, on the right node, at the right time ---

/// Every event of `kind` in the index, keyed by (source path suffix inside the sample, line).
fn events_of(sample: &str, kind: &str) -> BTreeMap<(String, u64), Value> {
    let out = zklens(ingested(sample))
        .args(["query", "--limit", "0", "-o", "jsonl"])
        .arg(format!("kind:{kind}"))
        .output()
        .expect("run query");
    // Exit 1 = nothing found: an empty answer, not an error.
    if out.status.code() == Some(1) {
        return BTreeMap::new();
    }
    let stdout = stdout_of(out, &format!("query kind:{kind}"));
    let marker = format!("/{sample}/");
    String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|l| {
            let e: Value = serde_json::from_str(l).ok()?;
            let src = e["source"].as_str()?;
            let rel = src.rsplit_once(&marker).map(|(_, r)| r.to_string())?;
            Some(((rel, e["line"].as_u64()?), e))
        })
        .collect()
}

/// The manifest's facts (`evidence` = file:line) each have an event of the expected kind there,
/// on the file's node, at the line's time, with the fields the line states.
fn facts_are_events(sample: &str) {
    let m = manifest(sample);
    let node_of: BTreeMap<&str, &str> = list(&m, "file")
        .iter()
        .map(|f| (text(f, "path"), text(f, "node")))
        .collect();
    // Files whose time stamps have no year (syslog): their times are compared without it.
    let yearless: BTreeSet<&str> = list(&m, "file")
        .iter()
        .filter(|f| f["time_has_year"].as_bool() == Some(false))
        .map(|f| text(f, "path"))
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    // (manifest table, event kind, the fact's time key); the fields compared are below.
    let tables: [(&str, &str, &str); 4] = [
        ("epoch", "quorum.formed", "formed_at"),
        ("election", "election.took", "at"),
        ("expiry", "session.expired", "at"),
        ("role_change", "service.role", "at"),
    ];
    for (table, kind, at_key) in tables {
        let events = events_of(sample, kind);
        for fact in m[table].as_array().into_iter().flatten() {
            let ev = text(fact, "evidence");
            let Some((rel, line)) = ev.rsplit_once(':') else {
                panic!("bad evidence {ev}")
            };
            let line: u64 = line.parse().expect("line number");
            checked += 1;
            let Some(e) = events.get(&(rel.to_string(), line)) else {
                failures.push(format!("{ev}: no {kind} event ({table} {fact})"));
                continue;
            };
            let mut want: Vec<(&str, Value)> = vec![
                ("node", json!(node_of.get(rel).copied().unwrap_or("?"))),
                ("ts", fact[at_key].clone()),
            ];
            match table {
                "epoch" => want.push(("epoch", fact["epoch"].clone())),
                "election" => {
                    want.push(("duration_ms", fact["took_ms"].clone()));
                    want.push(("state", fact["role"].clone()));
                }
                "expiry" => want.push(("session", fact["session"].clone())),
                _ => {
                    want.push(("session", fact["session"].clone()));
                    want.push((
                        "state",
                        json!(format!("{} -> {}", text(fact, "from"), text(fact, "to"))),
                    ));
                }
            }
            for (k, v) in want {
                if k == "ts" && yearless.contains(rel) {
                    // "2026-11-29T22:52:13.000Z" -> "-11-29T22:52:13.000Z"
                    let tail = |x: &Value| x.as_str().and_then(|s| s.get(4..)).map(str::to_string);
                    if tail(&e[k]).is_none() || tail(&e[k]) != tail(&v) {
                        failures.push(format!(
                            "{ev}: {kind} ts = {}, expected {v} (any year)",
                            e[k]
                        ));
                    }
                    continue;
                }
                if e[k] != v {
                    failures.push(format!("{ev}: {kind} {k} = {}, expected {v}", e[k]));
                }
            }
        }
    }
    assert!(checked > 0, "{sample}: no facts in the manifest");
    assert!(
        failures.is_empty(),
        "{sample}: {} of {checked} facts not found as events:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn incident_2_facts_in_the_files_are_classified_events() {
    facts_are_events("incident-2");
}

#[test]
fn zk34_facts_in_the_files_are_classified_events() {
    facts_are_events("zk34");
}

#[test]
fn incident_3_facts_in_the_files_are_classified_events() {
    facts_are_events("incident-3");
}

// ---- the incidents the recording's driver caused --------------------------------------------------

fn incidents(sample: &str) -> Vec<Value> {
    let out = zklens(ingested(sample))
        .args(["incidents", "-o", "json"])
        .output()
        .expect("run incidents");
    serde_json::from_slice::<Value>(&stdout_of(out, "incidents -o json"))
        .expect("json")
        .as_array()
        .cloned()
        .expect("array")
}

fn sorted_strings(v: &Value) -> Vec<String> {
    let mut a: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    a.sort();
    a
}

/// Service failovers without their times.
fn failovers(v: &Value) -> Vec<(String, String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["service"].as_str().unwrap_or("").to_string(),
                f["from"].as_str().unwrap_or("").to_string(),
                f["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The incident the manifest entry describes: by id, or (rejoins) by kind and server.
fn find<'a>(all: &'a [Value], want: &Value) -> Option<&'a Value> {
    all.iter().find(|i| match want["id"].as_str() {
        Some(id) => i["id"] == id,
        None => {
            i["kind"] == want["kind"]
                && i["server"] == want["server"]
                && i["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(text(want, "id_prefix")))
        }
    })
}

/// Each incident of the manifest is reported with the leaders, epochs, expired sessions, lost
/// ephemerals, service failovers (and when the new primary said so) and sync the driver saw,
/// starting within the window the driver measured.
fn incidents_are_the_ones_the_driver_saw(sample: &str) {
    let m = manifest(sample);
    let all = incidents(sample);
    let names: Vec<&str> = all.iter().filter_map(|i| i["id"].as_str()).collect();
    let mut failures = Vec::new();
    for want in list(&m, "incident") {
        let label = want["id"]
            .as_str()
            .or(want["id_prefix"].as_str())
            .unwrap_or("?");
        let Some(inc) = find(&all, want) else {
            failures.push(format!(
                "{label}: not reported (reported: {})",
                names.join(", ")
            ));
            continue;
        };
        let mut fail = |what: String| failures.push(format!("{label}: {what}"));
        if inc["kind"] != want["kind"] {
            fail(format!("kind {} != {}", inc["kind"], want["kind"]));
        }
        for k in ["old_leader", "new_leader", "old_epoch", "new_epoch"] {
            if want.get(k).is_some() && inc[k] != want[k] {
                fail(format!("{k} {} != {}", inc[k], want[k]));
            }
        }
        if inc["sessions_expired"] != want["sessions_expired"] {
            fail(format!(
                "sessions_expired {} != {}",
                inc["sessions_expired"], want["sessions_expired"]
            ));
        }
        if sorted_strings(&inc["ephemerals_lost"]) != sorted_strings(&want["ephemerals_lost"]) {
            fail(format!(
                "ephemerals_lost {} != {}",
                inc["ephemerals_lost"], want["ephemerals_lost"]
            ));
        }
        let (got_f, want_f) = (
            failovers(&inc["service_failovers"]),
            failovers(&want["service_failovers"]),
        );
        if got_f != want_f {
            fail(format!(
                "service_failovers {} != {}",
                inc["service_failovers"], want["service_failovers"]
            ));
        } else {
            // When: the new primary's own "role change" line (one second of slack).
            for (g, w) in inc["service_failovers"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(want["service_failovers"].as_array().into_iter().flatten())
            {
                match (g["at"].as_str(), w["at"].as_str()) {
                    (Some(a), Some(b)) if (ms(a) - ms(b)).abs() <= 1000 => {}
                    (a, b) => fail(format!(
                        "failover to {} at {a:?}, its log says {b:?}",
                        w["to"]
                    )),
                }
            }
        }
        if let Some(sync) = want.get("sync") {
            if inc["sync"] != *sync {
                fail(format!("sync {} != {sync}", inc["sync"]));
            }
        }
        match inc["started_at"].as_str() {
            Some(s) => {
                let (lo, hi) = (
                    text(want, "started_not_before"),
                    text(want, "started_not_after"),
                );
                if ms(s) < ms(lo) || ms(s) > ms(hi) {
                    fail(format!("started {s}, outside [{lo}, {hi}]"));
                }
            }
            None => fail("no started_at".into()),
        }
    }
    // Nothing the driver did not cause (failovers, expiries, quorum losses, rejoins).
    let expected: BTreeSet<String> = list(&m, "incident")
        .iter()
        .map(|w| match w["id"].as_str() {
            Some(id) => id.to_string(),
            None => format!("{}:{}", text(w, "kind"), text(w, "server")),
        })
        .collect();
    for i in &all {
        let key = if i["kind"] == "server-rejoin" {
            format!("server-rejoin:{}", i["server"].as_str().unwrap_or("?"))
        } else {
            i["id"].as_str().unwrap_or("?").to_string()
        };
        if !expected.contains(&key) {
            failures.push(format!(
                "{}: reported, but the driver caused no such incident",
                i["id"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{sample}: incidents differ from the recording's:\n{}",
        failures.join("\n")
    );
}

#[test]
fn incident_2_incidents_are_the_ones_the_driver_saw() {
    incidents_are_the_ones_the_driver_saw("incident-2");
}

#[test]
fn zk34_incidents_are_the_ones_the_driver_saw() {
    incidents_are_the_ones_the_driver_saw("zk34");
}

#[test]
fn incident_3_incidents_are_the_ones_the_driver_saw() {
    incidents_are_the_ones_the_driver_saw("incident-3");
}

// ---- the manifest itself --------------------------------------------------------------------------

/// The manifest lists every file of its sample, and nothing that is not there: a re-recording
/// or a hand edit cannot leave the tests above checking a partial sample.
fn manifest_lists_exactly_the_sample_s_files(sample: &str) {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    let m = manifest(sample);
    let listed: BTreeSet<String> = list(&m, "file")
        .iter()
        .map(|f| text(f, "path").to_string())
        .collect();
    let root = samples().join(sample);
    let mut present = BTreeSet::new();
    walk(&root, &root, &mut present);
    assert_eq!(listed, present, "{sample}: manifest vs files");
    // Layout material: the manifest says which logger wrote each log with which pattern.
    for f in log_files(&m) {
        assert!(
            !text(f, "layout").is_empty() && !text(f, "logger").is_empty(),
            "{f}"
        );
    }
}

#[test]
fn incident_2_manifest_lists_exactly_the_sample_s_files() {
    manifest_lists_exactly_the_sample_s_files("incident-2");
}

#[test]
fn zk34_manifest_lists_exactly_the_sample_s_files() {
    manifest_lists_exactly_the_sample_s_files("zk34");
}

#[test]
fn incident_3_manifest_lists_exactly_the_sample_s_files() {
    manifest_lists_exactly_the_sample_s_files("incident-3");
}
