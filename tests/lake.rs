//! The event lake read by real engines. `zklens export` writes the recorded samples' events
//! as Parquet; pyarrow checks the schema's types and the partitions, and DuckDB runs the
//! session, zxid and kind + time-range questions, which must return exactly the events
//! `zklens query` returns.
//!
//! Spark (PySpark in `local[2]`) runs the same questions, and the example job
//! `examples/spark/expired_per_leader.py` is held to the fleet recording's manifest.
//!
//! The engines come from PyPI into the virtualenv `.ci/run` creates (`target/lake-venv`, or
//! the Python named by `ZKLENS_LAKE_PYTHON`). Without them the test says so and passes, unless
//! `ZKLENS_REQUIRE_ORACLE=1` (as in CI), where that is a failure.
#![cfg(feature = "lake")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python_with, skip, stdout_of, zklens};

fn python() -> Option<PathBuf> {
    python_with("pyarrow, duckdb")
}

/// The Python that runs PySpark, if it can: pyspark imports, and the `java` PySpark will
/// start ($JAVA_HOME/bin/java, else the one on PATH) is Java 17 or later.
fn spark_python() -> Option<PathBuf> {
    let py = python_with("pyspark")?;
    let java = std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .unwrap_or_else(|| PathBuf::from("java"));
    // `java -version` says `openjdk version "17.0.15" ...` (or "1.8.0_..." before 9) on stderr.
    let major = Command::new(&java)
        .arg("-version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned();
            let v = text.split('"').nth(1)?.to_string();
            v.split('.').next()?.parse::<u32>().ok()
        });
    match major {
        Some(m) if m >= 17 => Some(py),
        Some(m) => skip(format!(
            "{} is Java {m}: Spark 4 needs 17 or later",
            java.display()
        )),
        None => skip(format!(
            "no working {} (Spark needs Java 17+)",
            java.display()
        )),
    }
}

/// One Spark at a time: each is a JVM of several hundred MB and two busy cores for half a
/// minute.
static SPARK: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

/// `zklens ARGS` run against the index of `data` and against the lake `lake`: (exit status,
/// standard output) of each.
fn both(data: &Path, lake: &Path, args: &[&str]) -> ((Option<i32>, String), (Option<i32>, String)) {
    let run = |c: &mut assert_cmd::Command| {
        let out = c.args(args).output().expect("run zklens");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let mut from_lake = assert_cmd::Command::cargo_bin("zklens").expect("binary");
    from_lake
        .env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .arg("--lake")
        .arg(lake);
    (run(&mut zklens(data)), run(&mut from_lake))
}

/// A session answer's events as sorted JSON texts (events at one instant may come in another
/// order).
fn session_parts(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("session JSON");
    let mut events: Vec<String> = v
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e.to_string())
        .collect();
    events.sort();
    events
}

/// The lifecycle summary that heads a session's table (the lines before the events).
fn summary_of(table: &str) -> String {
    table
        .lines()
        .take_while(|l| !l.starts_with("TIME "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_analysis_reads_the_lake_as_it_reads_the_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    // One ensemble with two failovers and expiries; recipes with a split brain; two ensembles
    // at once.
    for name in ["incident-1", "incident-3", "fleet"] {
        let data = tmp.path().join(name);
        let lake = tmp.path().join(format!("{name}-lake"));
        stdout_of(
            zklens(&data)
                .args(["ingest", "-q"])
                .arg(samples.join(name))
                .output()
                .expect("ingest"),
            "ingest",
        );
        stdout_of(
            zklens(&data)
                .args(["export", "--out"])
                .arg(&lake)
                .output()
                .expect("export"),
            "export",
        );
        let (index, from_lake) = both(&data, &lake, &["incidents", "-o", "json"]);
        assert_eq!(index.0, Some(0), "{name}");
        assert_eq!(from_lake, index, "{name}: incidents");
        let list: serde_json::Value = serde_json::from_str(&index.1).expect("JSON");
        let list = list.as_array().expect("a list");
        assert!(!list.is_empty(), "{name}");
        for args in [
            &["incidents"][..],
            &["recipes", "-o", "json"],
            &["skew", "-o", "json"],
        ] {
            let (index, from_lake) = both(&data, &lake, args);
            assert_eq!(from_lake, index, "{name}: {args:?}");
        }
        let mut sessions = std::collections::BTreeSet::new();
        for i in list {
            let id = i["id"].as_str().expect("id");
            for args in [&["incident", id][..], &["incident", id, "-o", "json"]] {
                let (index, from_lake) = both(&data, &lake, args);
                assert_eq!(index.0, Some(0));
                assert_eq!(from_lake, index, "{name}: {args:?}");
            }
            for s in i["sessions_expired"].as_array().expect("sessions") {
                sessions.insert(s.as_str().expect("hex").to_string());
            }
        }
        for s in &sessions {
            let (index, from_lake) = both(&data, &lake, &["session", s, "-o", "json"]);
            assert_eq!(index.0, Some(0));
            assert_eq!(from_lake.0, index.0);
            assert_eq!(
                session_parts(&from_lake.1),
                session_parts(&index.1),
                "{name}: session {s}"
            );
            let (index, from_lake) = both(&data, &lake, &["session", s]);
            let summary = summary_of(&index.1);
            assert!(summary.contains("created"), "{summary}");
            assert_eq!(summary_of(&from_lake.1), summary, "{name}: session {s}");
        }
        if name == "incident-1" {
            assert!(!sessions.is_empty());
            let (index, from_lake) = both(&data, &lake, &["zxid", "0x100000012", "-o", "json"]);
            assert_eq!(from_lake, index, "zxid");
            // A session in a window, and one nobody had: the same answers and exit codes.
            let args = [
                "session",
                "0x10000fef8870000",
                "--since",
                "2026-11-25T03:39:30Z",
                "--until",
                "2026-11-25T03:39:34Z",
                "-o",
                "json",
            ];
            let (index, from_lake) = both(&data, &lake, &args);
            assert_eq!(
                session_parts(&from_lake.1),
                session_parts(&index.1),
                "{args:?}"
            );
            let (index, from_lake) = both(&data, &lake, &["session", "0x42", "-o", "json"]);
            assert_eq!((from_lake.0, index.0), (Some(1), Some(1)));
        }
    }
}

#[test]
fn a_lake_that_is_not_one_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake/ensemble=a/date=2026-11-30");
    std::fs::create_dir_all(&lake).expect("mkdir");
    let bad = lake.join("part-zk1-0.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet").expect("write");
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("zklens")
            .expect("binary")
            .env_remove("ZKLENS_SERVER")
            .arg("--lake")
            .arg(tmp.path().join("lake"))
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(&["incidents"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("part-zk1-0.parquet"), "{err}");
    // What the lake cannot answer says so.
    let out = run(&["query", "kind:session.expired"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lake answers"));
    // An empty directory is no lake.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = assert_cmd::Command::cargo_bin("zklens")
        .expect("binary")
        .arg("--lake")
        .arg(&empty)
        .arg("incidents")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn spark_reads_the_exported_lake_as_zklens_answers() {
    let Some(py) = spark_python() else { return };
    let _one = SPARK.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::tempdir().expect("tempdir");
    stdout_of(
        zklens(data.path())
            .args(["ingest", "-q", "--ensemble", "recorded"])
            .arg(root.join("samples/incident-1"))
            .output()
            .expect("ingest"),
        "ingest",
    );
    let lake = data.path().join("lake");
    stdout_of(
        zklens(data.path())
            .args(["export", "--out"])
            .arg(&lake)
            .output()
            .expect("export"),
        "export",
    );
    let all = query_keys(data.path(), "*", &[]);

    // The window's ends are two expiries' own instants (03:39:33.300 and 03:40:13.300): the
    // first is in, the second out, in Spark as in zklens (ts >= SINCE AND ts < UNTIL, to the
    // microsecond).
    let (since, until) = ("2026-11-25T03:39:33.300Z", "2026-11-25T03:40:13.300Z");
    let out = Command::new(&py)
        .arg(root.join("tests/lake/spark.py"))
        .arg(&lake)
        .args(["session.expired", since, until])
        .output()
        .expect("run python");
    let v: serde_json::Value =
        serde_json::from_slice(&stdout_of(out, "spark.py")).expect("spark.py's JSON");
    eprintln!("spark {} took {}", v["spark_version"], v["seconds"]);

    // The types as Spark sees them: what README's table promises a Spark user.
    assert_eq!(v["rows"].as_u64(), Some(all.len() as u64));
    let s = &v["schema"];
    assert_eq!(s["ts"], "TimestampType");
    for c in ["session", "zxid", "src_offset", "line"] {
        assert_eq!(s[c], "LongType", "{c}");
    }
    for c in ["epoch", "server", "leader", "myid"] {
        assert_eq!(s[c], "IntegerType", "{c}");
    }
    for c in [
        "node", "source", "kind", "level", "logger", "thread", "path", "peer", "state", "message",
        "src_path",
    ] {
        assert_eq!(s[c], "StringType", "{c}");
    }
    assert_eq!(
        v["attributes"],
        serde_json::json!(["MapType", "StringType", "StringType"])
    );
    // Partition discovery: the two columns come from the paths (and `date` is inferred as a
    // date, `ensemble` as a string: an all-digit ensemble name would come back an int).
    assert_eq!(s["ensemble"], "StringType");
    assert_eq!(s["date"], "DateType");
    assert_eq!(v["ensembles"], serde_json::json!(["recorded"]));

    // The same questions DuckDB answers, the same answers.
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
    assert_eq!(k.len(), 2, "the window holds 2 of incident-1's 3 expiries");
    assert_eq!(engine_keys(&v["kind_range"]), k, "expiries");
}

// The example job on the fleet lake tells what the recording driver measured.

/// A "0x..." session id as a number, to sort lists of them as ZooKeeper's ids, not as text.
fn id(hex: &str) -> u64 {
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("a hex id")
}

#[test]
fn spark_example_counts_the_sessions_each_new_leader_expired_as_the_fleet_manifest_says() {
    let Some(py) = spark_python() else { return };
    let _one = SPARK.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::tempdir().expect("tempdir");
    // The ensembles come from the ensemble=east / ensemble=west directories.
    stdout_of(
        zklens(data.path())
            .args(["ingest", "-q"])
            .arg(root.join("samples/fleet"))
            .output()
            .expect("ingest"),
        "ingest",
    );
    let lake = data.path().join("lake");
    stdout_of(
        zklens(data.path())
            .args(["export", "--out"])
            .arg(&lake)
            .output()
            .expect("export"),
        "export",
    );
    let out = Command::new(&py)
        .arg(root.join("examples/spark/expired_per_leader.py"))
        .arg(&lake)
        .arg("--json")
        .output()
        .expect("run python");
    let rows: serde_json::Value = serde_json::from_slice(&stdout_of(out, "expired_per_leader.py"))
        .expect("expired_per_leader.py's JSON");

    type Row = (String, i64, String, usize, Vec<String>);
    let got: Vec<Row> = rows
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            let sessions: Vec<String> = r["sessions"]
                .as_array()
                .expect("sessions")
                .iter()
                .map(|s| s.as_str().expect("hex").to_string())
                .collect();
            assert_eq!(r["sessions_expired"].as_u64(), Some(sessions.len() as u64));
            (
                r["ensemble"].as_str().expect("ensemble").to_string(),
                r["epoch"].as_i64().expect("epoch"),
                r["leader"].as_str().expect("a known leader").to_string(),
                sessions.len(),
                sessions,
            )
        })
        .collect();

    // What the manifest says: per ensemble, each epoch's leader (`leaders`), and the sessions
    // that leader expired in that epoch (`expired_sessions`: expired_by, and the epoch of
    // close_session_zxid). Sorted like the script's output: ensemble, epoch; ids as numbers.
    let path = root.join("samples/fleet.manifest.toml");
    let m: toml::Value =
        toml::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("TOML");
    let mut want: Vec<Row> = Vec::new();
    for e in m["ensemble"].as_array().expect("[[ensemble]]") {
        let name = e["name"].as_str().expect("name");
        for l in e["leaders"].as_array().expect("leaders") {
            let epoch = l["epoch"].as_integer().expect("epoch");
            let leader = l["leader"].as_str().expect("leader");
            let mut sessions: Vec<String> = e["expired_sessions"]
                .as_array()
                .expect("expired_sessions")
                .iter()
                .filter(|x| {
                    x["expired_by"].as_str() == Some(leader)
                        && (id(x["close_session_zxid"].as_str().expect("zxid")) >> 32) as i64
                            == epoch
                })
                .map(|x| x["session"].as_str().expect("session").to_string())
                .collect();
            sessions.sort_by_key(|s| id(s));
            want.push((name.into(), epoch, leader.into(), sessions.len(), sessions));
        }
    }
    want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    assert_eq!(got, want);
    // Spelled out (issue 17): east's epoch-2 leader zk2 expired calc-b's session; nobody else
    // expired any.
    assert_eq!(
        got.iter().map(|r| r.3).sum::<usize>(),
        1,
        "one expiry in the fleet"
    );
    assert!(got.contains(&(
        "east".into(),
        2,
        "zk2".into(),
        1,
        vec!["0x100050623290001".into()]
    )));

    // Each epoch began when the manifest says the quorum formed, and the expiry was both
    // committed (closeSession 0x20000003c) and logged by zk2.
    let formed: std::collections::BTreeMap<(String, i64), String> = m["ensemble"]
        .as_array()
        .expect("[[ensemble]]")
        .iter()
        .flat_map(|e| {
            let name = e["name"].as_str().expect("name").to_string();
            e["leaders"]
                .as_array()
                .expect("leaders")
                .iter()
                .map(move |l| {
                    (
                        (name.clone(), l["epoch"].as_integer().expect("epoch")),
                        l["formed_at"].as_str().expect("formed_at").to_string(),
                    )
                })
        })
        .collect();
    for r in rows.as_array().expect("rows") {
        let key = (
            r["ensemble"].as_str().expect("ensemble").to_string(),
            r["epoch"].as_i64().expect("epoch"),
        );
        assert_eq!(
            r["formed_at"].as_str(),
            formed.get(&key).map(String::as_str),
            "{r}"
        );
        for x in r["expiries"].as_array().expect("expiries") {
            assert_eq!(x["committed"], true, "{x}");
            assert_eq!(x["logged"], true, "{x}");
            assert_eq!(x["close_zxid"], "0x20000003c", "{x}");
        }
    }
}
