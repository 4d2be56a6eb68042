//! `zklens sql` (feature `sql`): DataFusion over the index and over a lake.
//!
//! On the recorded `samples/incident-1`: the same statements give the same rows from the
//! index and from the lake exported from it; DuckDB, a separate engine, gives the same rows
//! from the lake; the counts agree with `zklens query`'s. Hostile statements fail with exit 2
//! and a message, within the memory limit.
#![cfg(feature = "sql")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{python_with, sample_index, stdout_of, zklens};

/// The lake exported from the sample index, shared by the tests of this binary.
fn lake() -> &'static Path {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        stdout_of(
            zklens(sample_index())
                .args(["export", "--out"])
                .arg(d.path())
                .output()
                .expect("export"),
            "export",
        );
        d
    })
    .path()
}

/// `zklens sql STATEMENT -o jsonl` from the index (`lake` None) or a lake: exit code,
/// rows (objects), standard error.
fn sql(
    lake: Option<&Path>,
    statement: &str,
    extra: &[&str],
) -> (i32, Vec<serde_json::Value>, String) {
    let mut c = zklens(sample_index());
    c.env_remove("ZKLENS_LAKE");
    if let Some(l) = lake {
        c.arg("--lake").arg(l);
    }
    let out = c
        .args(["sql", statement, "-o", "jsonl"])
        .args(extra)
        .output()
        .expect("run zklens sql");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        rows,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The rows of a statement that must succeed with rows, from both sides.
fn rows(lake: Option<&Path>, statement: &str) -> Vec<serde_json::Value> {
    let (code, rows, err) = sql(lake, statement, &[]);
    assert_eq!(code, 0, "{statement}: {err}");
    rows
}

/// The busiest session, as hex, found by SQL itself.
fn busiest_session() -> String {
    let r = rows(
        None,
        "SELECT to_hex(session) AS s FROM events WHERE session IS NOT NULL \
         GROUP BY session ORDER BY count(*) DESC, session LIMIT 1",
    );
    format!("0x{}", r[0]["s"].as_str().expect("hex"))
}

/// The incident questions, each over the whole table and in a total order.
fn questions(session: &str) -> Vec<String> {
    vec![
        // Every event of a session across nodes, in time order.
        format!(
            "SELECT ts, node, kind, level, src_path, src_offset, zxid, message FROM events \
             WHERE session = zk_id('{session}') ORDER BY ts, node, src_path, src_offset"
        ),
        // Elections per epoch.
        "SELECT epoch, count(*) AS n FROM events WHERE kind LIKE 'election%' AND epoch IS NOT NULL \
         GROUP BY epoch ORDER BY epoch"
            .to_string(),
        // Sessions expired per hour.
        "SELECT date_trunc('hour', ts) AS hour, count(DISTINCT session) AS expired FROM events \
         WHERE kind = 'session.expired' GROUP BY 1 ORDER BY 1"
            .to_string(),
        // A filter the index reads only in part (the message is not an index lookup).
        "SELECT node, count(*) AS n FROM events WHERE node IN ('zk1', 'zk3') \
         AND message LIKE '%xpir%' GROUP BY node ORDER BY node"
            .to_string(),
        // A time window and a kind, with the partition columns.
        "SELECT ensemble, date, count(*) AS n FROM events \
         WHERE ts >= TIMESTAMP '2026-11-25T03:30:00Z' AND ts < '2026-11-25T03:45:00Z' \
         AND kind = 'session.expired' GROUP BY ensemble, date ORDER BY date"
            .to_string(),
        // The whole table, column by column.
        "SELECT count(*) AS n, count(session) AS s, count(zxid) AS z, count(DISTINCT node) AS nodes, \
         min(ts) AS first, max(ts) AS last, sum(src_offset) AS offsets, \
         sum(cardinality(map_keys(attributes))) AS attrs FROM events"
            .to_string(),
    ]
}

#[test]
fn the_index_and_the_lake_answer_the_same_statements_alike() {
    let session = busiest_session();
    for q in questions(&session) {
        let from_index = rows(None, &q);
        let from_lake = rows(Some(lake()), &q);
        assert!(!from_index.is_empty(), "{q}");
        assert_eq!(from_index, from_lake, "{q}");
    }
}

/// `zklens query … --count`.
fn count(q: &str, extra: &[&str]) -> u64 {
    let out = zklens(sample_index())
        .args(["query", q, "--count"])
        .args(extra)
        .output()
        .expect("zklens query");
    String::from_utf8_lossy(&stdout_of(out, q))
        .trim()
        .parse()
        .expect("a count")
}

fn n(r: &[serde_json::Value]) -> u64 {
    r[0]["n"].as_u64().expect("a count")
}

#[test]
fn counts_agree_with_the_query_language() {
    let session = busiest_session();
    let total = count("*", &[]);
    assert!(total > 1000);
    let q = "SELECT count(*) AS n FROM events";
    assert_eq!(n(&rows(None, q)), total);
    assert_eq!(n(&rows(Some(lake()), q)), total);
    let q = format!("SELECT count(*) AS n FROM events WHERE session = zk_id('{session}')");
    assert_eq!(
        n(&rows(None, &q)),
        count(&format!("session:{session}"), &[])
    );
    let (since, until) = ("2026-11-25T03:30:00Z", "2026-11-25T03:45:00Z");
    let q = format!(
        "SELECT count(*) AS n FROM events WHERE kind = 'session.expired' \
         AND ts >= TIMESTAMP '{since}' AND ts < TIMESTAMP '{until}'"
    );
    let want = count(
        "kind:session.expired",
        &["--since", since, "--until", until],
    );
    assert!(want > 0);
    assert_eq!(n(&rows(None, &q)), want);
    assert_eq!(n(&rows(Some(lake()), &q)), want);
}

#[test]
fn duckdb_reads_the_lake_as_zklens_sql_does() {
    let Some(py) = python_with("duckdb") else {
        return;
    };
    let session = busiest_session();
    // Integer and string columns only (the engines print times differently), in the syntax
    // both engines share; zk_id is zklens's, so DuckDB gets the number.
    let id = u64::from_str_radix(session.trim_start_matches("0x"), 16).expect("hex") as i64;
    let shared = [
        (
            format!("SELECT node, kind, src_path, src_offset FROM events WHERE session = zk_id('{session}') ORDER BY ts, node, src_path, src_offset"),
            format!("SELECT node, kind, src_path, src_offset FROM events WHERE session = {id} ORDER BY ts, node, src_path, src_offset"),
        ),
        (
            "SELECT epoch, count(*) AS n FROM events WHERE kind LIKE 'election%' AND epoch IS NOT NULL GROUP BY epoch ORDER BY epoch".to_string(),
            String::new(),
        ),
        (
            "SELECT ensemble, date, node, count(*) AS n, count(DISTINCT session) AS s FROM events GROUP BY ensemble, date, node ORDER BY ensemble, date, node".to_string(),
            String::new(),
        ),
        (
            "SELECT level, count(*) AS n FROM events WHERE level IS NOT NULL AND node = 'zk2' GROUP BY level ORDER BY level".to_string(),
            String::new(),
        ),
    ];
    let duck: Vec<String> = shared
        .iter()
        .map(|(ours, theirs)| {
            if theirs.is_empty() {
                ours.clone()
            } else {
                theirs.clone()
            }
        })
        .collect();
    let mut child = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lake/duckdb_sql.py"))
        .arg(lake())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run duckdb_sql.py");
    serde_json::to_writer(child.stdin.take().expect("stdin"), &duck).expect("statements");
    let out = child.wait_with_output().expect("duckdb_sql.py");
    // Rows as objects from column name to value: the same names and values, whatever the order
    // each side keeps an object's keys in.
    let theirs: Vec<Vec<serde_json::Value>> =
        serde_json::from_slice(&stdout_of(out, "duckdb_sql.py")).expect("DuckDB's JSON");
    for ((ours, _), theirs) in shared.iter().zip(theirs) {
        assert!(!theirs.is_empty(), "{ours}");
        for from in [None, Some(lake())] {
            let got = rows(from, ours);
            assert_eq!(got, theirs, "{ours} (from {from:?})");
        }
    }
}

#[test]
fn filters_reach_the_index_and_the_parquet_reader() {
    let session = busiest_session();
    let q = format!(
        "EXPLAIN SELECT node FROM events WHERE session = zk_id('{session}') AND message LIKE '%x%'"
    );
    let plan = |lake: Option<&Path>| -> String {
        rows(lake, &q)
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The index is asked for the session only (the rest is DataFusion's).
    let p = plan(None);
    assert!(
        p.contains("partial_filters=[events.session = Int64("),
        "{p}"
    );
    // The Parquet reader gets the predicate (statistics, bloom filters, late decoding).
    let p = plan(Some(lake()));
    assert!(p.contains("predicate="), "{p}");
    assert!(p.contains("session@"), "{p}");
}

#[test]
fn exit_codes_and_hostile_statements() {
    // Rows: 0; none: 1.
    assert_eq!(sql(None, "SELECT 1 AS one", &[]).0, 0);
    let (code, r, _) = sql(
        None,
        "SELECT node FROM events WHERE node = 'no-such-node'",
        &[],
    );
    assert_eq!((code, r.len()), (1, 0));
    // Errors: 2, with the cause.
    for (q, says) in [
        ("SELEC node FROM events", "sql"),
        ("SELECT no_such_column FROM events", "no_such_column"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT zk_id('0xnope') FROM events LIMIT 1", "zk_id"),
        ("DROP TABLE events", "sql"),
        (
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "sql",
        ),
        ("SET datafusion.execution.batch_size = 1", "sql"),
    ] {
        let (code, _, err) = sql(None, q, &[]);
        assert_eq!(code, 2, "{q}: {err}");
        assert!(err.contains(says), "{q}: {err}");
    }
    // Nothing is written: COPY and INSERT are refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("copied.csv");
    let q = format!("COPY (SELECT node FROM events) TO '{}'", target.display());
    let (code, _, err) = sql(None, &q, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(!target.exists(), "COPY wrote {}", target.display());
    // A statement past its memory: an error naming the limit, not an abort.
    let (code, _, err) = sql(
        None,
        "SELECT * FROM events ORDER BY message",
        &["--max-memory", "1"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("memory"), "{err}");
    let (code, _, err) = sql(
        Some(lake()),
        "SELECT a.message FROM events a JOIN events b ON a.node = b.node ORDER BY a.message, b.message",
        &["--max-memory", "4"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.to_lowercase().contains("memory") || err.contains("Resources exhausted"),
        "{err}"
    );
    // A lake that is not one is an error naming it.
    let not = tempfile::tempdir().expect("tempdir");
    let file = not.path().join("x.parquet");
    std::fs::write(&file, b"not parquet").expect("write");
    let (code, _, err) = sql(Some(not.path()), "SELECT count(*) FROM events", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("x.parquet"), "{err}");
}

#[test]
fn table_and_csv_output() {
    let out = zklens(sample_index())
        .args([
            "sql",
            "SELECT node, count(*) AS n FROM events GROUP BY node ORDER BY node",
        ])
        .output()
        .expect("sql");
    let text = String::from_utf8_lossy(&stdout_of(out, "sql table")).into_owned();
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|c| c.trim().to_string()).collect() };
    assert!(
        text.lines().any(|l| cells(l) == ["", "node", "n", ""]),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| cells(l).get(1).map(String::as_str) == Some("zk1")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("rows"), "{text}");
    let out = zklens(sample_index())
        .args([
            "sql",
            "-o",
            "csv",
            "SELECT node, count(*) AS n FROM events GROUP BY node ORDER BY node",
        ])
        .output()
        .expect("sql");
    let text = String::from_utf8_lossy(&stdout_of(out, "sql csv")).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "node,n");
    assert_eq!(lines[1].split(',').next(), Some("calc-a"), "{text}");
    assert!(lines.len() >= 8, "{text}");
    // `-o json` is one array holding what `-o jsonl` gives line by line; with no rows, `[]`.
    let statement = "SELECT node, count(*) AS n FROM events GROUP BY node ORDER BY node";
    let out = zklens(sample_index())
        .args(["sql", "-o", "json", statement])
        .output()
        .expect("sql");
    let array: Vec<serde_json::Value> =
        serde_json::from_slice(&stdout_of(out, "sql json")).expect("one JSON array");
    assert_eq!(array, rows(None, statement));
    let out = zklens(sample_index())
        .args([
            "sql",
            "-o",
            "json",
            "SELECT node FROM events WHERE node = 'nobody'",
        ])
        .output()
        .expect("sql");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // Formats that are not rows are refused, naming the ones sql has.
    let out = zklens(sample_index())
        .args(["sql", "-o", "html", statement])
        .output()
        .expect("sql");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("jsonl"));
}
