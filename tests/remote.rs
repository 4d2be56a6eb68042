//! `--server`: the query commands asked of a running `zklens serve` answer exactly what they
//! answer from the data directory (same bytes, same exit status), every parameter included:
//! `--tz` (the service used to read `--since`/`--until` as UTC), and `--since`/`--until` for
//! `session` and `zxid` (used to be dropped). The API answers each error with its own status.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{exe, free_port, sample_index, stdout_of, zklens, Serve};

/// HTTP status and body of a GET.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    common::http_get(port, path)
}

/// The sample index (ingested once) copied, served with one more source so that a commit
/// happens and the live detector runs.
fn service(tmp: &Path) -> (PathBuf, u16, Serve) {
    let data = tmp.join("data");
    common::copy_dir(sample_index(), &data);
    let extra = tmp.join("extra.log");
    std::fs::write(
        &extra,
        "2026-11-25 03:40:20,000 INFO app.extra: one more line\n",
    )
    .expect("write extra log");
    let port = free_port();
    let log = std::fs::File::create(tmp.join("serve.log")).expect("serve log");
    let child = Command::new(exe())
        .env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .arg("--data-dir")
        .arg(&data)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--commit-ms", "150", "--poll-ms", "50"])
        .arg("--source")
        .arg(format!("extra=file://{}", extra.display()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start zklens serve");
    let serve = Serve(child);
    let t0 = Instant::now();
    // Up, the extra line committed, and the incidents detected over the committed index.
    loop {
        let ready = get(port, "/api/query?q=node:extra&count=true")
            .is_some_and(|(c, b)| c == 200 && b.contains("\"total\":1"))
            && get(port, "/api/incidents").is_some_and(|(c, b)| c == 200 && b.len() > 2);
        if ready {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the service did not index and detect within 60 s: {}",
            std::fs::read_to_string(tmp.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (data, port, serve)
}

fn local(data: &Path, args: &[&str]) -> Output {
    zklens(data).args(args).output().expect("run zklens")
}

fn remote(port: u16, args: &[&str]) -> Output {
    let mut c = zklens(Path::new("/nonexistent/zklens-data"));
    c.arg("--server")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("run zklens --server")
}

/// The same command, locally and remotely: same stdout, same exit status.
fn same(data: &Path, port: u16, args: &[&str]) -> Output {
    let (l, r) = (local(data, args), remote(port, args));
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&l.stdout),
        "zklens {args:?}: remote stdout differs from local (remote stderr: {})",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        r.status.code(),
        l.status.code(),
        "zklens {args:?}: exit status (local stderr: {}; remote stderr: {})",
        String::from_utf8_lossy(&l.stderr),
        String::from_utf8_lossy(&r.stderr)
    );
    l
}

fn first(data: &Path, q: &str, field: &str) -> String {
    let out = stdout_of(local(data, &["query", "-o", "jsonl", q]), "query");
    let line = String::from_utf8_lossy(&out)
        .lines()
        .next()
        .map(str::to_string);
    let v: serde_json::Value =
        serde_json::from_str(&line.expect("one event")).expect("a JSON line");
    v[field].as_str().expect("the field").to_string()
}

/// `2026-11-25T03:39:51.123Z` as a zone-less wall time in UTC+01:00.
fn plus_one_hour(rfc3339: &str) -> String {
    let (date, rest) = rfc3339.split_once('T').expect("a date");
    let hour: u32 = rest[..2].parse().expect("an hour");
    assert!(hour < 23, "the sample stays within the day");
    format!("{date} {:02}{}", hour + 1, &rest.trim_end_matches('Z')[2..])
}

#[test]
fn remote_answers_are_the_local_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, port, _serve) = service(tmp.path());
    let sid = first(&data, "kind:session.expired", "session");
    let zx = first(&data, "kind:txn.closeSession", "zxid");

    // --tz reaches the service: 04:39:30 at +01:00 is 03:39:30 UTC, inside the sample
    // (03:39-03:40 UTC); read as UTC it would be after every event.
    let since = ["--since", "2026-11-25 04:39:30", "--tz", "+01:00"];
    let n = same(&data, port, &[&["query", "-c", "*"][..], &since].concat());
    let n: u64 = String::from_utf8_lossy(&n.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert!(n > 0, "events after 03:39:30 UTC");
    // --since/--until reach session and zxid.
    for args in [
        vec!["session", &sid],
        vec!["session", "-o", "json", &sid],
        vec![
            "session",
            &sid,
            "--until",
            "2026-11-25 04:39:30",
            "--tz",
            "+01:00",
        ],
        vec![
            "session",
            &sid,
            "-c",
            "--since",
            "2026-11-25 04:39:30",
            "--tz",
            "+01:00",
        ],
        vec!["zxid", &zx],
        vec!["zxid", "-o", "csv", &zx],
        vec![
            "zxid",
            &zx,
            "-c",
            "--since",
            "2026-11-25 05:00:00",
            "--tz",
            "+01:00",
        ],
        vec!["query", "kind:election.*"],
        vec!["query", "--limit", "3", "-o", "jsonl", "kind:client.*"],
        vec!["run", "elections", "-o", "jsonl"],
        vec!["query", "node:nosuchnode"],
        vec!["query", "kind:("],
        vec!["incidents"],
        vec!["incidents", "-o", "json"],
        vec!["skew"],
        vec!["skew", "-o", "json"],
        vec!["recipes"],
        vec!["recipes", "/election/calc", "-o", "json"],
        vec!["recipes", "/nothing"],
        vec!["sources"],
    ] {
        same(&data, port, &args);
    }
    let z = same(
        &data,
        port,
        &[
            "zxid",
            &zx,
            "--until",
            "2026-11-25 04:00:00",
            "--tz",
            "+01:00",
        ],
    );
    assert_eq!(z.status.code(), Some(1), "nothing before 03:00 UTC");

    // Incidents: one report per incident, in every format; --since honours --tz.
    let list: Vec<serde_json::Value> = serde_json::from_slice(&stdout_of(
        local(&data, &["incidents", "-o", "json"]),
        "incidents",
    ))
    .expect("a JSON list");
    assert!(list.len() >= 2, "the sample has several incidents");
    for inc in &list {
        let id = inc["id"].as_str().expect("an id");
        for o in ["text", "json", "html"] {
            same(&data, port, &["incident", id, "-o", o]);
        }
    }
    let mut starts: Vec<&str> = list
        .iter()
        .map(|i| i["started_at"].as_str().expect("started_at"))
        .collect();
    starts.sort_unstable();
    let later = starts[starts.len() / 2];
    let want = starts.iter().filter(|s| **s >= later).count();
    let out = same(
        &data,
        port,
        &[
            "incidents",
            "-o",
            "json",
            "--since",
            &plus_one_hour(later),
            "--tz",
            "+01:00",
        ],
    );
    let got: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(got.len(), want, "incidents starting at or after {later}");

    // Errors: the same message and exit status, and a fitting HTTP status.
    let missing = remote(port, &["incident", "nosuch"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("HTTP 404: no incident \"nosuch\"; known: "),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    for (path, code) in [
        ("/api/query?q=kind:(", 400),
        ("/api/query?q=*&since=yesterday-ish", 400),
        ("/api/query?q=*&tz=Mars/Olympus", 400),
        ("/api/sessions/not-an-id", 400),
        ("/api/incidents/nosuch", 404),
        ("/api/incidents/nosuch/html", 404),
        ("/api/query?q=incident:nosuch", 404),
        ("/api/skew", 200),
        ("/api/index", 200),
    ] {
        let got = get(port, path).map(|r| r.0);
        assert_eq!(got, Some(code), "{path}");
    }
}
