//! The event lake read by real engines. `zklens export` writes the recorded samples' events
//! as Parquet; pyarrow checks the schema's types and the partitions, and DuckDB runs the
//! session, zxid and kind + time-range questions, which must return exactly the events
//! `zklens query` returns.
//!
//! The engines come from PyPI into the virtualenv `.ci/run` creates (`target/lake-venv`, or
//! the Python named by `ZKLENS_LAKE_PYTHON`). Without them the test says so and passes, unless
//! `ZKLENS_REQUIRE_ORACLE=1` (as in CI), where that is a failure.
#![cfg(feature = "lake")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stdout_of, zklens};

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("ZKLENS_LAKE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lake-venv/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", "import pyarrow, duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(p);
    }
    let why = format!(
        "{} cannot import pyarrow and duckdb (.ci/run installs them)",
        p.display()
    );
    assert!(
        std::env::var("ZKLENS_REQUIRE_ORACLE").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// An event's identity in both answers: (source, offset, session, zxid) — a snapshot's
/// sessions share their file's offset, and a transaction its record's.
type Key = (String, i64, Option<i64>, Option<i64>);

/// The keys of every event a `zklens query` returns, sorted (duplicates kept).
fn query_keys(data: &Path, q: &str, extra: &[&str]) -> Vec<Key> {
    let out = zklens(data)
        .args(["query", q, "--limit", "0", "-o", "jsonl"])
        .args(extra)
        .output()
        .expect("run query");
    let text = match out.status.code() {
        Some(1) => Vec::new(),
        _ => stdout_of(out, q),
    };
    let id = |v: &serde_json::Value| {
        v.as_str()
            .map(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).expect("a hex id") as i64)
    };
    let mut keys: Vec<Key> = String::from_utf8_lossy(&text)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (
                v["source"].as_str().expect("source").to_string(),
                v["offset"].as_i64().expect("offset"),
                id(&v["session"]),
                id(&v["zxid"]),
            )
        })
        .collect();
    keys.sort();
    keys
}

fn engine_keys(v: &serde_json::Value) -> Vec<Key> {
    let mut keys: Vec<Key> = v
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().expect("src_path").to_string(),
                r[1].as_i64().expect("src_offset"),
                r[2].as_i64(),
                r[3].as_i64(),
            )
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn pyarrow_and_duckdb_read_the_exported_lake_as_zklens_answers() {
    let Some(py) = python() else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    stdout_of(
        zklens(data.path())
            .args(["ingest", "--ensemble", "recorded"])
            .arg(samples.join("incident-1"))
            .output()
            .expect("ingest"),
        "ingest",
    );
    let lake = data.path().join("lake");
    let out = zklens(data.path())
        .args(["export", "--out"])
        .arg(&lake)
        .output()
        .expect("export");
    let said = String::from_utf8_lossy(&stdout_of(out, "export")).into_owned();
    let all = query_keys(data.path(), "*", &[]);
    assert!(all.len() > 1000);
    assert!(
        said.starts_with(&format!("{} events in ", all.len())),
        "{said}"
    );

    let (since, until) = ("2026-11-25T03:30:00Z", "2026-11-25T03:45:00Z");
    let out = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lake/engines.py"))
        .arg(&lake)
        .args(["session.expired", since, until])
        .output()
        .expect("run python");
    let v: serde_json::Value =
        serde_json::from_slice(&stdout_of(out, "engines.py")).expect("engines.py's JSON");

    // pyarrow: the types of zklens.event.v1, the partition columns from the paths.
    assert_eq!(v["rows"].as_u64(), Some(all.len() as u64));
    let fs = &v["file_schema"];
    assert_eq!(fs["ts"], "timestamp[us, tz=UTC]");
    for c in ["session", "zxid", "src_offset", "line"] {
        assert_eq!(fs[c], "int64", "{c}");
    }
    for c in ["epoch", "server", "leader", "myid"] {
        assert_eq!(fs[c], "int32", "{c}");
    }
    for c in ["node", "source", "kind", "level", "logger", "thread"] {
        assert_eq!(
            fs[c], "dictionary<values=string, indices=int32, ordered=0>",
            "{c}"
        );
    }
    assert_eq!(
        v["attributes"],
        serde_json::json!(["MapType", "string", "string"])
    );
    assert!(
        fs.get("ensemble").is_none(),
        "partition columns stay out of the files"
    );
    assert_eq!(v["file_metadata"]["zklens.schema"], "zklens.event.v1");
    assert!(v["dataset_schema"].get("ensemble").is_some());
    assert!(v["dataset_schema"].get("date").is_some());
    assert_eq!(
        v["sorting_columns"],
        serde_json::json!([["node", false], ["ts", false]])
    );
    assert_eq!(v["compression"], serde_json::json!(["ZSTD"]));
    assert_eq!(v["ensembles"], serde_json::json!(["recorded"]));

    // DuckDB answers what zklens answers, about the ids it found busiest (as Java's signed
    // longs: the same 64 bits as zklens's hex).
    let hex = |k: &str| format!("0x{:x}", v[k].as_i64().expect(k) as u64);
    let (session, zxid) = (hex("session_id"), hex("zxid_id"));
    let s = query_keys(data.path(), &format!("session:{session}"), &[]);
    assert!(!s.is_empty());
    assert_eq!(engine_keys(&v["session"]), s, "session {session}");
    let z = query_keys(data.path(), &format!("zxid:{zxid}"), &[]);
    assert!(!z.is_empty());
    assert_eq!(engine_keys(&v["zxid"]), z, "zxid {zxid}");
    let k = query_keys(
        data.path(),
        "kind:session.expired",
        &["--since", since, "--until", until],
    );
    assert!(!k.is_empty());
    assert_eq!(engine_keys(&v["kind_range"]), k, "expiries");
}

#[test]
fn export_exit_codes_follow_the_other_commands() {
    let data = common::sample_index();
    let tmp = tempfile::tempdir().expect("tempdir");
    // Nothing matched: exit 1, nothing written.
    let lake = tmp.path().join("none");
    zklens(data)
        .args(["export", "kind:no.such.kind", "--out"])
        .arg(&lake)
        .assert()
        .code(1);
    assert_eq!(std::fs::read_dir(&lake).map(|d| d.count()).unwrap_or(0), 0);
    // An output that cannot be a directory: exit 2, naming it.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = zklens(data)
        .args(["export", "--out"])
        .arg(&file)
        .output()
        .expect("export");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a-file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A query that does not parse: exit 2.
    zklens(data)
        .args(["export", "kind:(", "--out"])
        .arg(tmp.path().join("bad"))
        .assert()
        .code(2);
    // JSON lines of the whole index: as many lines as events.
    let lake = tmp.path().join("jsonl");
    zklens(data)
        .args(["export", "--format", "jsonl", "--out"])
        .arg(&lake)
        .assert()
        .code(0);
    let count: usize = String::from_utf8_lossy(
        &zklens(data)
            .args(["query", "*", "--count"])
            .output()
            .expect("count")
            .stdout,
    )
    .trim()
    .parse()
    .expect("a count");
    let mut lines = 0;
    let mut dirs = vec![lake];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                lines += std::fs::read_to_string(&p).expect("read").lines().count();
            }
        }
    }
    assert_eq!(lines, count);
}
