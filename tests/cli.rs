//! Command-line behaviour: exit codes, output formats, re-ingestion, bad input, user formats.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use serde_json::Value;

const SERVER: &str = "\
2026-11-24 22:02:29,123 [myid:1] - INFO  [QuorumPeer[myid=1](plain=[0:0:0:0:0:0:0:0]:2181)(secure=disabled):QuorumPeer@1525] - LOOKING
2026-11-24 22:02:29,523 [myid:1] - INFO  [QuorumPeer[myid=1](plain=[0:0:0:0:0:0:0:0]:2181)(secure=disabled):Leader@581] - LEADING - LEADER ELECTION TOOK - 400 MS
2026-11-24 22:02:35,000 [myid:1] - INFO  [SessionTracker:ZooKeeperServer@632] - Expiring session 0x100000a1b2c0000, timeout of 4000ms exceeded
2026-11-24 22:02:36,000 [myid:1] - WARN  [NIOWorkerThread-1:NIOServerCnxn@371] - Unexpected exception
java.io.IOException: boom
\tat a.b.C(C.java:1)
2026-11-24 22:02:37,000 [myid:1] - INFO  [CommitProcessor:1:FinalRequestProcessor@1] - nothing special
";

const CLIENT: &str = "\
2026-11-24 22:02:30,001 INFO kazoo.client: Zookeeper connection established, state: CONNECTED
2026-11-24 22:02:30,002 INFO calc: registered ephemeral znode /services/calc/calc-a session 0x100000a1b2c0000
2026-11-24 22:02:36,500 WARNING kazoo.protocol.connection: Session has expired
";

struct Env {
    _tmp: tempfile::TempDir,
    logs: PathBuf,
    data: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = tmp.path().join("logs");
    let data = tmp.path().join("data");
    write(&logs.join("zk1/logs/zookeeper.log"), SERVER.as_bytes());
    write(&logs.join("calc-a/logs/calc-a.log"), CLIENT.as_bytes());
    Env {
        _tmp: tmp,
        logs,
        data,
    }
}

fn write(p: &Path, b: &[u8]) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, b).expect("write");
}

fn zk(e: &Env) -> Command {
    let mut c = Command::cargo_bin("zklens").expect("binary");
    c.env_remove("ZKLENS_DATA_DIR")
        .arg("--data-dir")
        .arg(&e.data);
    c
}

fn jsonl(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn count(e: &Env, q: &str) -> u64 {
    let out = zk(e).args(["query", q, "-c"]).output().expect("run");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count")
}

#[test]
fn ingest_then_query_across_nodes() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    let out = zk(&e)
        .args(["query", "session:0x100000a1b2c0000", "-o", "jsonl"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows = jsonl(&out);
    let nodes: Vec<&str> = rows.iter().filter_map(|r| r["node"].as_str()).collect();
    assert_eq!(nodes, vec!["calc-a", "zk1"], "time order, both sides");
    let expired = &rows[1];
    assert_eq!(expired["kind"], "session.expired");
    assert_eq!(expired["session"], "0x100000a1b2c0000");
    assert_eq!(expired["ts"], "2026-11-24T22:02:35.000Z");
    assert_eq!(expired["level"], "INFO");
    assert!(expired["offset"].as_u64().is_some_and(|o| o > 0));
    assert!(expired["source"]
        .as_str()
        .is_some_and(|s| s.ends_with("zk1/logs/zookeeper.log")));
    // The stack trace is folded into its entry: 5 entries in the server log, 3 in the client's.
    assert_eq!(count(&e, "node:zk1"), 5);
    assert_eq!(count(&e, "node:calc-a"), 3);
    let trace = zk(&e)
        .args(["query", "boom", "-o", "jsonl"])
        .output()
        .expect("run");
    let rows = jsonl(&trace.stdout);
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Unexpected exception\njava.io.IOException: boom\n")));
}

#[test]
fn exit_codes_follow_ripgrep() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    zk(&e)
        .args(["query", "kind:session.expired"])
        .assert()
        .code(0);
    zk(&e).args(["query", "kind:no.such.kind"]).assert().code(1);
    zk(&e).args(["query", "(unbalanced"]).assert().code(2);
    zk(&e).args(["session", "not-an-id"]).assert().code(2);
    let empty = tempfile::tempdir().expect("tempdir");
    Command::cargo_bin("zklens")
        .expect("binary")
        .arg("--data-dir")
        .arg(empty.path().join("none"))
        .args(["query", "x"])
        .assert()
        .code(2);
}

#[test]
fn query_language_features() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    assert_eq!(count(&e, "kind:election.*"), 2);
    assert_eq!(
        count(&e, "node:zk1 AND (level:WARN OR kind:session.expired)"),
        2
    );
    assert_eq!(count(&e, "node:zk1 -kind:log"), 3);
    assert_eq!(count(&e, "\"Expiring session\""), 1);
    assert_eq!(count(&e, "\"session Expiring\""), 0);
    assert_eq!(count(&e, "session:100000a1b2c0000"), 2, "bare hex");
    assert_eq!(count(&e, "session:72057637443469312"), 2, "decimal");
    assert_eq!(
        count(&e, "ts:[2026-11-24T22:02:30Z TO 2026-11-24T22:02:36Z]"),
        4
    );
    assert_eq!(
        count(&e, "ts:{2026-11-24T22:02:30Z TO 2026-11-24T22:02:36Z}"),
        3
    );
    assert_eq!(count(&e, "level:warning"), 2, "case and WARNING normalised");
    let out = zk(&e)
        .args([
            "query",
            "node:zk1",
            "--since",
            "2026-11-24 22:02:35",
            "--until",
            "2026-11-24T22:02:37Z",
            "-o",
            "jsonl",
        ])
        .output()
        .expect("run");
    assert_eq!(jsonl(&out.stdout).len(), 2);
    let out = zk(&e)
        .args(["query", "node:zk1", "--limit", "2", "-o", "jsonl"])
        .output()
        .expect("run");
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["kind"], "election.looking", "earliest first");
    assert!(String::from_utf8_lossy(&out.stderr).contains("first 2 of 5"));
}

#[test]
fn output_formats() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    let csv = zk(&e)
        .args(["query", "kind:session.expired", "-o", "csv"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("ts,node,source,offset,kind,level,session,zxid,epoch,message")
    );
    assert!(lines
        .next()
        .is_some_and(|l| l.contains(",session.expired,INFO,0x100000a1b2c0000,")));
    let json = zk(&e)
        .args(["query", "kind:session.expired", "-o", "json"])
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let table = zk(&e).args(["zxid", "0x1"]).output().expect("run");
    assert_eq!(table.status.code(), Some(1));
}

#[test]
fn reingest_does_not_duplicate_and_appends_are_picked_up() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    let all = count(&e, "node:zk1 OR node:calc-a");
    assert_eq!(all, 8);
    assert_eq!(count(&e, "*"), all, "a bare * matches every event");
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    assert_eq!(count(&e, "node:zk1 OR node:calc-a"), 8);
    // A copy of the same file elsewhere is recognised by content.
    let copy = e.logs.join("copy/calc-a/logs/calc-a.log");
    write(&copy, CLIENT.as_bytes());
    zk(&e).arg("ingest").arg(&copy).assert().success();
    assert_eq!(count(&e, "node:zk1 OR node:calc-a"), 8);
    // Appended lines are read from the checkpoint on.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(e.logs.join("zk1/logs/zookeeper.log"))
        .expect("open");
    f.write_all(b"2026-11-24 22:03:00,000 [myid:1] - INFO  [main:A@1] - appended line\n")
        .expect("append");
    drop(f);
    let out = zk(&e).arg("ingest").arg(&e.logs).output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(from byte"));
    assert_eq!(count(&e, "node:zk1"), 6);
    assert_eq!(count(&e, "appended"), 1);
}

#[test]
fn bad_input_is_reported_and_nothing_else_lost() {
    let e = env();
    let bad = e.logs.join("bad");
    write(
        &bad.join("binary.bin"),
        b"\x7fELF\x02\x01\x01\x00\x00\x00garbage",
    );
    write(
        &bad.join("latin1.log"),
        b"2026-11-24 22:02:29,123 [myid:2] - INFO  [main:A@1] - caf\xe9 au lait\n",
    );
    write(&bad.join("empty.log"), b"");
    write(&bad.join("truncated.log"), b"2026-11-24 22:02:29,123 [myid:2] - INFO  [main:A@1] - complete\n2026-11-24 22:02:30,000 [myid:2] - INFO  [main:A@1] - cut in the mid");
    let mut huge = b"2026-11-24 22:02:29,123 [myid:2] - INFO  [main:A@1] - ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 << 20));
    huge.extend_from_slice(
        b"\n2026-11-24 22:02:31,000 [myid:2] - INFO  [main:A@1] - after the huge line\n",
    );
    write(&bad.join("huge.log"), &huge);
    let out = zk(&e).arg("ingest").arg(&e.logs).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a failed file makes the run exit 2: {err}"
    );
    assert!(
        err.contains("binary.bin: at byte offset 0: binary data (ELF executable)"),
        "{err}"
    );
    assert!(
        err.contains("latin1.log: at byte offset 57: invalid UTF-8"),
        "{err}"
    );
    assert!(
        err.contains("truncated.log: at byte offset 63: the file ends inside line 2"),
        "{err}"
    );
    assert!(
        err.contains("huge.log: at byte offset 0: line 1 is 10485814 bytes long"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("empty file") || err.contains("empty.log"),
        "{stdout}{err}"
    );
    // Everything else is indexed.
    assert_eq!(count(&e, "node:zk1 OR node:calc-a"), 8);
    assert_eq!(count(&e, "caf"), 1);
    assert_eq!(count(&e, "\"cut in the mid\""), 1);
    assert_eq!(count(&e, "\"after the huge line\""), 1);
}

#[test]
fn closed_pipe_is_not_an_error() {
    let e = env();
    let many: String = (0..20_000)
        .map(|i| format!("2026-11-24 22:02:29,123 [myid:1] - INFO  [main:A@1] - line {i}\n"))
        .collect();
    write(&e.logs.join("zk2/logs/zookeeper.log"), many.as_bytes());
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("zklens"))
        .arg("--data-dir")
        .arg(&e.data)
        .args(["query", "node:zk2", "--limit", "0", "-o", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut first).expect("read");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(first.contains("line 0"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn formats_load_at_run_time_and_check() {
    let e = env();
    zk(&e).args(["formats", "--check"]).assert().success();
    let dir = e.logs.parent().expect("parent").join("parsers");
    write(
        &dir.join("mine.toml"),
        br#"
[[format]]
name = "pipes"
description = "ts | level | message"
layout = "%d{yyyy-MM-dd'T'HH:mm:ss.SSS} | %p | %m%n"
rules = ["mine"]
priority = 20

[[ruleset]]
name = "mine"
[[ruleset.rule]]
kind = "custom.thing"
match = "widget {server} exploded"
examples = ["widget 7 exploded"]
"#,
    );
    write(
        &e.logs.join("svc/logs/svc.log"),
        b"2026-11-24T22:02:29.123 | ERROR | widget 7 exploded\n",
    );
    zk(&e)
        .arg("--parsers")
        .arg(&dir)
        .args(["formats", "--check"])
        .assert()
        .success();
    zk(&e)
        .arg("--parsers")
        .arg(&dir)
        .arg("ingest")
        .arg(&e.logs)
        .assert()
        .success();
    let out = zk(&e)
        .args(["query", "kind:custom.thing", "-o", "jsonl"])
        .output()
        .expect("run");
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["server"], 7);
    assert_eq!(rows[0]["level"], "ERROR");
    // A broken definition names its file.
    write(
        &dir.join("broken.toml"),
        b"[[format]]\nname = \"x\"\nlayout = \"%d no message\"\n",
    );
    let out = zk(&e)
        .arg("--parsers")
        .arg(&dir)
        .arg("formats")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml"));
}

#[test]
fn forced_format_and_node_override() {
    let e = env();
    zk(&e)
        .arg("ingest")
        .arg(e.logs.join("calc-a/logs/calc-a.log"))
        .args(["--format", "plain", "--node", "other"])
        .assert()
        .success();
    let out = zk(&e)
        .args(["query", "node:other", "-o", "jsonl"])
        .output()
        .expect("run");
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|r| r["ts"].is_null()),
        "plain lines have no time"
    );
    zk(&e)
        .arg("ingest")
        .arg(&e.logs)
        .args(["--format", "nope"])
        .assert()
        .code(2);
}

#[test]
fn per_node_time_zones() {
    let e = env();
    zk(&e)
        .arg("ingest")
        .arg(&e.logs)
        .args(["--tz", "zk1=+02:00"])
        .assert()
        .success();
    let out = zk(&e)
        .args([
            "query",
            "kind:session.expired OR kind:client.connected",
            "-o",
            "jsonl",
        ])
        .output()
        .expect("run");
    let rows = jsonl(&out.stdout);
    let ts = |node: &str| {
        rows.iter()
            .find(|r| r["node"] == node)
            .and_then(|r| r["ts"].as_str())
            .map(str::to_string)
    };
    assert_eq!(
        ts("zk1").as_deref(),
        Some("2026-11-24T20:02:35.000Z"),
        "zk1 read as +02:00"
    );
    assert_eq!(
        ts("calc-a").as_deref(),
        Some("2026-11-24T22:02:30.001Z"),
        "others stay UTC"
    );
    zk(&e)
        .arg("ingest")
        .arg(&e.logs)
        .args(["--tz", "zk1=Mars/Olympus"])
        .assert()
        .code(2);
}

#[test]
fn a_format_a_command_cannot_produce_is_refused() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    // These used to be accepted and print a table.
    for (args, formats) in [
        (&["incidents", "-o", "html"][..], "table, json"),
        (&["skew", "-o", "html"][..], "table, json"),
        (&["incident", "x", "-o", "table"][..], "text, json, html"),
        (&["query", "*", "-o", "html"][..], "table, json, jsonl, csv"),
        (&["txnlog", "dump", "x", "-o", "json"][..], "toolkit, jsonl"),
    ] {
        let out = zk(&e).args(args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed something");
        assert!(
            err.contains(&format!("[possible values: {formats}]")),
            "{args:?} names the formats it supports: {err}"
        );
    }
    zk(&e).args(["incidents", "-o", "json"]).assert().success();
    zk(&e).args(["skew", "-o", "table"]).assert().code(1);
}

#[test]
fn tz_is_one_flag_with_one_parser() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    // 22:02:35 UTC (the expiry) is 23:02:35 at +01:00, and in Berlin in November.
    for (tz, since, want) in [
        ("UTC", "2026-11-24 22:02:35", "1"),
        ("+01:00", "2026-11-24 23:02:35", "1"),
        ("+01:00", "2026-11-24 23:02:36", "0"),
        ("Europe/Berlin", "2026-11-24 23:02:35", "1"),
    ] {
        let out = zk(&e)
            .args([
                "query",
                "-c",
                "kind:session.expired",
                "--since",
                since,
                "--tz",
                tz,
            ])
            .output()
            .expect("run");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want,
            "{tz} {since}"
        );
    }
    for bad in [
        &["query", "*", "--tz", "Mars/Olympus"][..],
        &["query", "*", "--tz", "zk1=UTC"][..],
        &["parse", "x", "--tz", "Mars/Olympus"][..],
        &["txnlog", "dump", "x", "--tz", "+02:00"][..],
        &[
            "incidents",
            "--since",
            "2026-11-24 23:00",
            "--tz",
            "nowhere",
        ][..],
    ] {
        let out = zk(&e).args(bad).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
}

#[test]
fn incidents_window_honours_tz() {
    let e = env();
    zk(&e).arg("ingest").arg(&e.logs).assert().success();
    let all = zk(&e)
        .args(["incidents", "-o", "json"])
        .output()
        .expect("run");
    let list: Vec<Value> = serde_json::from_slice(&all.stdout).expect("json");
    let Some(start) = list.first().and_then(|i| i["started_at"].as_str()) else {
        panic!(
            "the sample shows an incident: {}",
            String::from_utf8_lossy(&all.stderr)
        );
    };
    // started_at is UTC; the same instant written at +01:00 without a zone.
    let (date, rest) = start.split_once('T').expect("a date");
    let hour: u32 = rest[..2].parse().expect("an hour");
    let local = format!("{date} {:02}{}", hour + 1, &rest.trim_end_matches('Z')[2..]);
    let n = |args: &[&str]| -> usize {
        let out = zk(&e)
            .args(["incidents", "-o", "json"])
            .args(args)
            .output()
            .expect("run");
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .expect("json")
            .len()
    };
    assert_eq!(n(&["--since", &local, "--tz", "+01:00"]), list.len());
    assert_eq!(n(&["--until", &local, "--tz", "+01:00"]), 0);
}

/// `zklens parse -o jsonl FILE`'s events (the command must succeed).
fn parse_jsonl(p: &Path) -> Vec<Value> {
    let out = Command::cargo_bin("zklens")
        .expect("binary")
        .args(["parse", "-o", "jsonl"])
        .arg(p)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}: {out:?}", p.display());
    jsonl(&out.stdout)
}

/// Lines in layouts no shipped format knows, as applications write them.
const FOREIGN: &[(&str, &str)] = &[
    (
        "py-threads.log",
        "2026-11-24 22:02:29,123 INFO [Thread-3 (zk_loop)] kazoo.client - Connecting to 127.0.0.1(127.0.0.1):2181, use_ssl: False\n\
         2026-11-24 22:02:30,000 WARNING [Thread-3 (zk_loop)] kazoo.client - Connection dropped: socket connection broken\n\
         Traceback (most recent call last):\n  File \"svc.py\", line 3, in <module>\n\
         2026-11-24 22:02:31,500 INFO [MainThread] svc - registered ephemeral znode /services/calc/calc-a session 0x100000a1b2c0000\n",
    ),
    (
        "logback.log",
        "2026-11-24 22:02:29.123 [zk worker 1] INFO  c.e.ledger.Service - role change: standby -> primary\n\
         2026-11-24 22:02:30.456 [main-EventThread] WARN  o.a.c.f.state.ConnectionStateManager - State change: SUSPENDED\n",
    ),
    (
        "syslog.log",
        "Nov 24 22:02:29 host-3 calc-c[1234]: role change: standby -> primary\n\
         Nov 24 22:02:30 host-3 calc-c[1234]: Session has expired\n",
    ),
    (
        "structlog.jsonl",
        "{\"event\": \"role change: standby -> primary\", \"level\": \"info\", \"timestamp\": \"2026-11-24T22:02:29.123Z\", \"logger\": \"svc\"}\n\
         {\"event\": \"Session has expired\", \"level\": \"warning\", \"timestamp\": \"2026-11-24T22:02:30.000Z\", \"logger\": \"kazoo.client\"}\n",
    ),
];

#[test]
fn unknown_layouts_are_learned_with_timestamps_levels_and_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, text) in FOREIGN {
        let p = tmp.path().join(name);
        write(&p, text.as_bytes());
        let ev = parse_jsonl(&p);
        assert!(ev.len() >= 2, "{name}: {ev:?}");
        for e in &ev {
            assert!(e["ts"].is_string(), "{name}: no time in {e}");
            // (the traditional syslog file format records no level)
            assert!(
                e["level"].is_string() || *name == "syslog.log",
                "{name}: no level in {e}"
            );
        }
        let kinds: Vec<&str> = ev.iter().filter_map(|e| e["kind"].as_str()).collect();
        match *name {
            "py-threads.log" => {
                assert_eq!(ev[0]["thread"], "Thread-3 (zk_loop)");
                assert_eq!(ev[0]["logger"], "kazoo.client");
                assert_eq!(
                    kinds,
                    [
                        "client.connecting",
                        "client.disconnected",
                        "service.registered"
                    ]
                );
                // The traceback folds into the entry before it.
                assert!(ev[1]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Traceback")));
                assert_eq!(ev[2]["session"], "0x100000a1b2c0000");
            }
            "logback.log" => {
                assert_eq!(ev[0]["thread"], "zk worker 1");
                assert_eq!(ev[1]["logger"], "o.a.c.f.state.ConnectionStateManager");
                assert_eq!(kinds[0], "service.role");
            }
            "syslog.log" => {
                assert_eq!(ev[0]["logger"], "calc-c");
                assert_eq!(kinds, ["service.role", "client.session_expired"]);
                assert!(ev[0]["ts"]
                    .as_str()
                    .is_some_and(|t| t.contains("-11-24T22:02:29")));
            }
            "structlog.jsonl" => {
                assert_eq!(ev[0]["message"], "role change: standby -> primary");
                assert_eq!(kinds, ["service.role", "client.session_expired"]);
            }
            _ => {}
        }
    }
    // --explain names the learned layout and says why the shipped ones do not fit.
    let out = Command::cargo_bin("zklens")
        .expect("binary")
        .args(["formats", "--explain"])
        .arg(tmp.path().join("py-threads.log"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "chosen: inferred (layout learned from the file: %d{RFC3339} %p [%t] %c - %m)"
        ),
        "{text}"
    );
    assert!(
        text.contains("no  python-logging         column 29: expected a logger name"),
        "{text}"
    );
}

#[test]
fn a_layout_given_on_the_command_line_is_used() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("odd.log");
    write(
        &p,
        b"24/11/2026 22:02:29.123 | calc | WARNING | Session has expired\n\
          24/11/2026 22:02:30.000 | calc | INFO | Zookeeper connection established, state: CONNECTED\n",
    );
    let run = |args: &[&str]| {
        Command::cargo_bin("zklens")
            .expect("binary")
            .arg("parse")
            .args(args)
            .arg(&p)
            .output()
            .expect("runs")
    };
    let out = run(&[
        "-o",
        "jsonl",
        "--layout",
        "%(asctime)s | %(name)s | %(levelname)s | %(message)s",
        "--layout-time",
        "dd/MM/yyyy HH:mm:ss.SSS",
    ]);
    assert!(out.status.success(), "{out:?}");
    let ev = jsonl(&out.stdout);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["ts"], "2026-11-24T22:02:29.123Z");
    assert_eq!(ev[0]["logger"], "calc");
    assert_eq!(ev[0]["kind"], "client.session_expired");
    let out = run(&[
        "-o",
        "jsonl",
        "--layout",
        r"regex:^(?P<ts>\S+ \S+) \| (?P<logger>\S+) \| (?P<level>\w+) \| (?P<msg>.*)$",
        "--layout-time",
        "dd/MM/yyyy HH:mm:ss.SSS",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(jsonl(&out.stdout)[1]["kind"], "client.connected");
    // A layout that cannot be compiled is an error that says why, exit 2.
    let out = run(&["--layout", "%(asctime)s no message field"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no message field"));
}

#[test]
fn ids_named_anywhere_in_an_entry_are_extracted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("zookeeper.log");
    // ZooKeeper 3.4 puts the exception's message, which names the session, on the next line.
    write(
        &p,
        b"2026-11-24 22:02:29,123 [myid:1] - WARN  [NIOServerCxn.Factory:0.0.0.0/0.0.0.0:2181:NIOServerCnxn@357] - caught end of stream exception\n\
          EndOfStreamException: Unable to read additional data from client sessionid 0x14b2c0000, likely client has closed socket\n\
          \tat org.apache.zookeeper.server.NIOServerCnxn.doIO(NIOServerCnxn.java:228)\n\
          2026-11-24 22:02:30,000 [myid:1] - INFO  [main:Svc@1] - lease renewed (Session: 0x14b2c0001)\n\
          2026-11-24 22:02:31,000 [myid:1] - ERROR [main:Svc@1] - handler failed\n\
          java.lang.IllegalStateException: lease lost\n\
          Caused by: java.io.IOException: no reply for session_id=0x14b2c0002 after 3 tries\n",
    );
    let ev = parse_jsonl(&p);
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(ev[0]["session"], "0x14b2c0000");
    assert_eq!(ev[1]["session"], "0x14b2c0001");
    assert_eq!(ev[2]["session"], "0x14b2c0002");
}

/// Runs zklens on the index in `data`, in `dir` (relative paths, so nothing above the test's
/// directory names a node).
fn zk_at(data: &Path, dir: &Path) -> Command {
    let mut c = Command::cargo_bin("zklens").expect("binary");
    c.env_remove("ZKLENS_DATA_DIR")
        .arg("--data-dir")
        .arg(data)
        .current_dir(dir);
    c
}

#[test]
fn nodes_are_named_by_what_tells_files_apart() {
    let e = env();
    let run = e.logs.parent().expect("parent").join("run");
    let other = SERVER
        .replace("myid:1", "myid:2")
        .replace("myid=1", "myid=2");
    write(&run.join("apps/calc-a.log"), CLIENT.as_bytes());
    write(&run.join("apps/calc-a.log.1"), CLIENT.as_bytes());
    write(&run.join("apps/calc-b.log"), CLIENT.as_bytes());
    write(&run.join("host-3/zookeeper.log.2"), SERVER.as_bytes());
    // A server log whose path names nothing: its myid names it.
    write(&run.join("srv/zookeeper.log"), other.as_bytes());
    let out = zk_at(&e.data, &run)
        .args(["ingest", "--threads", "1", "apps", "host-3", "srv"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // The summary says where a name came from when it is not the directory's.
    let line = |path: &str| {
        stdout
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("no line for {path} in\n{stdout}"))
            .trim_start()
            .to_string()
    };
    assert!(line("apps/calc-a.log").starts_with("calc-a (file name) "));
    assert!(line("apps/calc-a.log.1").starts_with("calc-a (file name) "));
    assert!(line("apps/calc-b.log").starts_with("calc-b (file name) "));
    assert!(line("host-3/zookeeper.log.2").starts_with("host-3 "));
    assert!(line("srv/zookeeper.log").starts_with("zk2 (myid 2) "));
    assert_eq!(count(&e, "node:calc-a"), 6);
    assert_eq!(count(&e, "node:calc-b"), 3);
    assert_eq!(count(&e, "node:host-3"), 5);
    assert_eq!(count(&e, "node:zk2"), 5);
    assert_eq!(count(&e, "node:apps"), 0);

    // --node-from REGEX: a path it does not match is an error naming the path; the rest go on.
    let data2 = e.data.with_extension("2");
    let out = zk_at(&data2, &run)
        .args([
            "ingest",
            "--node-from",
            r"^apps/(?P<node>[a-z]+)",
            "apps",
            "srv",
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("srv/zookeeper.log: --node-from") && err.contains("does not match"),
        "{err}"
    );
    let n = |q: &str| -> usize {
        let out = zk_at(&data2, &run)
            .args(["query", "-c", q])
            .output()
            .expect("run");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(usize::MAX)
    };
    assert_eq!(n("node:calc"), 9);
    assert_eq!(n("node:zk2"), 0);

    // --node-from file, and a bad regex is refused before anything is read.
    let data3 = e.data.with_extension("3");
    zk_at(&data3, &run)
        .args(["ingest", "-q", "--node-from", "file", "host-3"])
        .assert()
        .success();
    let out = zk_at(&data3, &run)
        .args(["query", "-c", "node:zookeeper"])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    zk_at(&data3, &run)
        .args(["ingest", "--node-from", "(", "host-3"])
        .assert()
        .code(2);
}

#[test]
fn a_layout_nobody_knows_is_warned_about() {
    let e = env();
    // No timestamp anywhere: no format, shipped or learned, can give its entries a time.
    let unknown = e.logs.join("odd/odd.log");
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!("user=u{i} action=login result=ok\n"));
    }
    write(&unknown, text.as_bytes());
    for quiet in [false, true] {
        let data = e.data.with_extension(if quiet { "q" } else { "v" });
        let mut c = zk_at(&data, &e.logs);
        c.arg("ingest");
        if quiet {
            c.arg("-q");
        }
        let out = c.arg(&e.logs).output().expect("run");
        let (stdout, err) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{err}");
        // One warning, for that file: its format, its share, the first line without a time.
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 1, "{err}");
        let w = warnings[0];
        assert!(w.contains(&unknown.display().to_string()), "{w}");
        assert!(
            w.contains("only 0.0% of ") && w.contains(" entries have a timestamp"),
            "{w}"
        );
        assert!(
            w.contains("at byte offset 0: user=u0 action=login result=ok"),
            "{w}"
        );
        if quiet {
            assert!(stdout.is_empty(), "{stdout}");
        } else {
            // The summary shows the same format and shares per file.
            let row = stdout
                .lines()
                .find(|l| l.ends_with("odd/odd.log"))
                .unwrap_or_else(|| panic!("{stdout}"));
            let format = row.split_whitespace().nth(1).unwrap_or_default();
            assert!(w.contains(&format!("with format {format} ")), "{w} / {row}");
            assert!(row.contains(" 0.0% "), "{row}");
            let zk1 = stdout
                .lines()
                .find(|l| l.ends_with("zk1/logs/zookeeper.log"))
                .unwrap_or_else(|| panic!("{stdout}"));
            // 5 entries, all with a time; 3 classified (election, leading, expiry).
            assert!(zk1.contains(" 100.0% ") && zk1.contains(" 60.0% "), "{zk1}");
        }
    }
    // parse --stats: per file, then the totals.
    let out = zk(&e)
        .args(["parse", "--stats"])
        .arg(&e.logs)
        .output()
        .expect("run");
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(err.contains("warning") && err.contains("odd.log"), "{err}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(
        rows.iter()
            .any(|l| l.ends_with("odd/odd.log") && l.contains(" 0.0% ")),
        "{stdout}"
    );
    let totals = rows
        .iter()
        .find(|l| l.starts_with("3 files"))
        .unwrap_or_else(|| panic!("{stdout}"));
    // 8 entries with a time (5 server + 3 client), the odd file's without.
    assert!(
        totals.contains("% timestamped") && !totals.contains("100.0% timestamped"),
        "{totals}"
    );
    // `zklens sources` keeps the shares.
    let out = zk_at(&e.data.with_extension("v"), &e.logs)
        .arg("sources")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let odd = stdout
        .lines()
        .find(|l| l.ends_with("odd/odd.log"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(odd.contains("0.0% timestamped"), "{odd}");
}

/// Regression (issue 15): an I/O error printed its cause twice (`/x: No such file or directory
/// (os error 2): No such file or directory (os error 2)`), because the error's message held its
/// cause and the chain printed it again. Each command that fails on a file names the file and
/// the cause once.
#[test]
fn an_io_error_names_the_file_and_its_cause_once() {
    let e = env();
    let missing = e.logs.join("no-such-file.log");
    let m = missing.display().to_string();
    let dir = e.logs.display().to_string();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["ingest", &m], &m, "No such file or directory"),
        (
            vec!["serve", "--config", &m],
            &m,
            "No such file or directory",
        ),
        // A directory where a file is wanted.
        (vec!["serve", "--config", &dir], &dir, "Is a directory"),
        (
            vec!["--parsers", &m, "formats"],
            &m,
            "No such file or directory",
        ),
        (
            vec!["snapshot", "dump", &m],
            &m,
            "No such file or directory",
        ),
        (vec!["txnlog", "dump", &m], &m, "No such file or directory"),
    ];
    for (args, path, cause) in cases {
        let out = zk(&e).args(&args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("{path}: ")), "{args:?}: {err}");
        assert_eq!(err.matches(cause).count(), 1, "{args:?}: {err}");
    }
}
