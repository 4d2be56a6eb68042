//! Hostile queries and requests (issue 15): the query language's depth, term and wildcard
//! limits from the CLI and over HTTP, the API's time and result-size budgets, its `Host`
//! check, its refusal to listen beyond loopback without a token, and secrets read from files
//! or the environment rather than flags visible in `ps`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{exe, free_port, sample_index, zklens, Serve};

fn run(data: &Path, args: &[&str]) -> Output {
    zklens(data).args(args).output().expect("run zklens")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Regression: 2,000 `-` or 10,000 `(` overflowed the parser's stack and the CLI died of
/// SIGABRT; 2,000 OR'd wildcards took seconds and hundreds of MB. Each is now a clean error
/// (exit 2) naming the limit and where it was hit.
#[test]
fn the_cli_refuses_hostile_queries_with_exit_2() {
    let data = sample_index();
    let wildcards = vec!["kind:*"; 500].join(" OR ");
    let terms = vec!["kind:x"; 2000].join(" OR ");
    for (q, want) in [
        (
            format!("{}x", "-".repeat(2000)),
            "query: nested deeper than 64 levels of parentheses and negations (the limit) at byte offset 64",
        ),
        (
            format!("{}x", "(".repeat(10_000)),
            "query: nested deeper than 64 levels of parentheses and negations (the limit) at byte offset 64",
        ),
        (
            terms,
            "query: more than 1024 terms (the limit) at byte offset 10240",
        ),
        (
            wildcards,
            "query: the wildcards expand into more than 4096 terms (the limit) at kind:*",
        ),
    ] {
        let o = run(data, &["query", "-c", "--", &q]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", &q[..20], stderr(&o));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
    // Within the limits, the same shapes still run.
    let o = run(
        data,
        &["query", "-c", "--", &format!("{}kind:log", "-".repeat(64))],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    common::http_get(port, path)
}

/// `zklens serve` over a copy of the sample index with `config` (TOML) and `args`, up and
/// answering `/health`.
fn service(tmp: &Path, config: &str, args: &[&str], env: &[(&str, &str)]) -> (u16, Serve) {
    let data = tmp.join("data");
    if !data.exists() {
        common::copy_dir(sample_index(), &data);
    }
    let cfg = tmp.join("serve.toml");
    std::fs::write(&cfg, config).expect("write config");
    let port = free_port();
    let log = std::fs::File::create(tmp.join("serve.log")).expect("serve log");
    let mut c = Command::new(exe());
    c.env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .env_remove("ZKLENS_TOKEN")
        .env_remove("ZKLENS_TOKEN_FILE")
        .arg("--data-dir")
        .arg(&data)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        c.env(k, v);
    }
    let serve = Serve(c.spawn().expect("start zklens serve"));
    let t0 = Instant::now();
    while get(port, "/health").is_none_or(|(c, _)| c != 200) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "zklens serve did not answer: {}",
            std::fs::read_to_string(tmp.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (port, serve)
}

fn remote(port: u16, args: &[&str]) -> Output {
    zklens(Path::new("/nonexistent/zklens-data"))
        .env_remove("ZKLENS_TOKEN")
        .env_remove("ZKLENS_TOKEN_FILE")
        .arg("--server")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("run zklens --server")
}

fn events_in(body: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
    v["events"].as_array().map_or(0, Vec::len)
}

/// Regression: `GET /api/query?q=` with 500 `-` overflowed a worker's stack and aborted
/// `zklens serve`; `limit=0` answered every event (92 MB in one answer). Now: 400 and the
/// service keeps answering; answers are cut at `max_events` / `max_answer_bytes` and say so,
/// and the `--server` client says so too.
#[test]
fn serve_survives_hostile_queries_and_cuts_big_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _serve) = service(tmp.path(), "max_events = 5\n", &[], &[]);
    for q in [
        format!("{}x", "-".repeat(500)),
        format!("{}x", "(".repeat(10_000)),
        vec!["kind:*"; 500].join("%20OR%20"),
    ] {
        let (code, body) = get(port, &format!("/api/query?q={q}")).expect("an answer");
        assert_eq!(code, 400, "{body}");
        assert!(body.contains("(the limit)"), "{body}");
        assert_eq!(get(port, "/health").map(|r| r.0), Some(200), "still up");
    }

    // limit=0 (all) and a limit above max_events are cut at 5 and say so; a limit below is not.
    let all = get(port, "/api/query?q=*&limit=0").expect("an answer");
    assert_eq!(all.0, 200);
    assert_eq!(events_in(&all.1), 5);
    assert!(all.1.contains("\"truncated\":true"), "{}", &all.1[..200]);
    let big = get(port, "/api/query?q=*&limit=100").expect("an answer");
    assert_eq!(events_in(&big.1), 5);
    assert!(big.1.contains("\"truncated\":true"));
    let small = get(port, "/api/query?q=*&limit=3").expect("an answer");
    assert_eq!(events_in(&small.1), 3);
    assert!(!small.1.contains("truncated"));
    let count = get(port, "/api/query?q=*&count=true").expect("an answer");
    assert!(!count.1.contains("truncated"), "{}", count.1);

    // The other endpoints that answer events: a session's.
    let sid = {
        let out = remote(
            port,
            &[
                "query",
                "-o",
                "jsonl",
                "--limit",
                "1",
                "kind:session.expired",
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
        v["session"].as_str().expect("a session").to_string()
    };
    let s = get(port, &format!("/api/sessions/{sid}?limit=0")).expect("an answer");
    assert_eq!(s.0, 200);
    assert!(events_in(&s.1) <= 5);

    // The client surfaces the cut (stdout holds the 5 events, stderr says why).
    let out = remote(port, &["query", "--limit", "0", "-o", "jsonl", "*"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    assert!(
        stderr(&out).contains("the service cut its answer at 5 of "),
        "{}",
        stderr(&out)
    );
}

/// The byte budget cuts an answer too, before the event that would pass it.
#[test]
fn serve_cuts_answers_at_max_answer_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _serve) = service(tmp.path(), "max_answer_bytes = 4096\n", &[], &[]);
    let (code, body) = get(port, "/api/query?q=*&limit=1000").expect("an answer");
    assert_eq!(code, 200);
    let n = events_in(&body);
    assert!(n > 0 && n < 40, "{n} events in 4 KiB");
    assert!(body.contains("\"truncated\":true"));
    assert!(body.len() < 3 * 4096, "{} bytes", body.len());
}

/// Regression: a request had no time budget. Past `request_timeout_ms` it is answered 503
/// with a message, and the service goes on answering.
#[test]
fn serve_answers_503_past_the_time_budget_and_keeps_answering() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _serve) = service(tmp.path(), "request_timeout_ms = 1\n", &[], &[]);
    // About 1,000 unions over every event, then every event read: far more than 1 ms.
    let heavy = vec!["*"; 1000].join("%20OR%20");
    for _ in 0..3 {
        let (code, body) = get(port, &format!("/api/query?q={heavy}&limit=0")).expect("answer");
        assert_eq!(code, 503, "{}", &body[..body.len().min(300)]);
        assert!(body.contains("time budget"), "{body}");
        assert_eq!(get(port, "/health").map(|r| r.0), Some(200));
    }
    let out = remote(
        port,
        &["query", "--limit", "0", &vec!["*"; 1000].join(" OR ")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HTTP 503"), "{}", stderr(&out));
}

/// Regression: no `Host` check, so a page rebinding its DNS name to 127.0.0.1 could read the
/// API from a browser. Names other than loopback, the listen address and `api_hosts` get 421.
#[test]
fn serve_refuses_hosts_it_was_not_told_about() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, _serve) = service(
        tmp.path(),
        "api_hosts = [\"zklens.example.com\"]\n",
        &["--api-host", "other.example.com"],
        &[],
    );
    for (host, want) in [
        (Some("evil.example"), 421),
        (Some("evil.example:80"), 421),
        (Some("localhost.evil.example"), 421),
        (Some("localhost"), 200),
        (Some("127.0.0.1"), 200),
        (Some("zklens.example.com"), 200),
        (Some("other.example.com:7311"), 200),
        (None, 200),
    ] {
        for path in ["/health", "/api/index"] {
            let got = common::http_request(port, path, host, "").map(|r| r.0);
            assert_eq!(got, Some(want), "{host:?} {path}");
        }
    }
    let body = common::http_request(port, "/api/index", Some("evil.example"), "").expect("answer");
    assert!(body.1.contains("api_hosts"), "{}", body.1);
}

/// Regression: listening beyond loopback without a token gave no warning. It is refused
/// (exit 2, naming the settings); with a token it starts.
#[test]
fn serve_refuses_a_non_loopback_listen_without_a_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let start = |env: &[(&str, &str)]| {
        let mut c = Command::new(exe());
        c.env_remove("ZKLENS_DATA_DIR")
            .env_remove("ZKLENS_SERVER")
            .env_remove("ZKLENS_TOKEN")
            .env_remove("ZKLENS_TOKEN_FILE")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .args(["serve", "--listen", &format!("0.0.0.0:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        Serve(c.spawn().expect("start zklens serve"))
    };
    let mut srv = start(&[]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = srv.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "zklens serve started on 0.0.0.0 without a token"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2));
    let mut err = String::new();
    if let Some(mut e) = srv.0.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).expect("stderr");
    }
    assert!(
        err.contains("no token is set")
            && err.contains("token_file")
            && err.contains("--token-file"),
        "{err}"
    );
    // With a token (from the environment) it starts, and wants the token.
    let _srv = start(&[("ZKLENS_TOKEN", "s3cret")]);
    let t0 = Instant::now();
    while get(port, "/health").is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not up with a token"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(port, "/api/index").map(|r| r.0), Some(401));
}

/// Secrets from files and the environment: `token_file` (configuration), `--token-file`
/// (service and `--server` client), `ZKLENS_TOKEN`; a secret given as a flag still works but
/// warns that `ps` shows it.
#[test]
fn tokens_come_from_files_and_flags_warn() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tok = tmp.path().join("token");
    std::fs::write(&tok, "t0ken-from-file\n").expect("write token");
    // Only its owner may read it (else a warning says so: checked below).
    std::fs::set_permissions(&tok, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let cfg = format!("token_file = {:?}\n", tok.display().to_string());
    let (port, _serve) = service(tmp.path(), &cfg, &[], &[]);
    let auth = |t: &str| format!("Authorization: Bearer {t}\r\n");
    assert_eq!(
        common::http_request(port, "/api/index", Some("127.0.0.1"), "").map(|r| r.0),
        Some(401)
    );
    assert_eq!(
        common::http_request(
            port,
            "/api/index",
            Some("127.0.0.1"),
            &auth("t0ken-from-file")
        )
        .map(|r| r.0),
        Some(200)
    );
    // The client: --token-file and ZKLENS_TOKEN say nothing; --token works and warns.
    let tok_s = tok.display().to_string();
    let quiet = remote(port, &["--token-file", &tok_s, "query", "-c", "*"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert!(!stderr(&quiet).contains("warning"), "{}", stderr(&quiet));
    let env = zklens(Path::new("/nonexistent"))
        .env("ZKLENS_TOKEN", "t0ken-from-file")
        .arg("--server")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["query", "-c", "*"])
        .output()
        .expect("run");
    assert_eq!(env.status.code(), Some(0), "{}", stderr(&env));
    assert!(!stderr(&env).contains("warning"), "{}", stderr(&env));
    let loud = remote(port, &["--token", "t0ken-from-file", "query", "-c", "*"]);
    assert_eq!(loud.status.code(), Some(0), "{}", stderr(&loud));
    assert!(
        stderr(&loud)
            .contains("warning: --token on the command line is visible to every user in `ps`"),
        "{}",
        stderr(&loud)
    );
    // A token file others may read is used, with a warning; an empty one is refused,
    // naming the file. (The port is taken, so a service that got that far stops.)
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = held.local_addr().expect("addr").to_string();
    std::fs::set_permissions(&tok, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let data = tmp.path().join("data");
    let o = run(
        &data,
        &["serve", "--token-file", &tok_s, "--listen", &taken],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "warning: secret file {tok_s} is readable by other users"
        )),
        "{}",
        stderr(&o)
    );
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let empty_s = empty.display().to_string();
    let o = run(
        &data,
        &["serve", "--token-file", &empty_s, "--listen", &taken],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "{}: at byte offset 0: the secret's first line is empty",
            empty.display()
        )),
        "{}",
        stderr(&o)
    );
}

/// `--zk-auth` as a flag warns; `--zk-auth-file` reads the file (a missing one is an error
/// naming it before anything starts).
#[test]
fn zookeeper_auth_comes_from_a_file_and_the_flag_warns() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let missing = tmp.path().join("no-such-auth");
    // A port already taken: a service that gets as far as listening stops there.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = held.local_addr().expect("addr").to_string();
    let o = run(
        &data,
        &[
            "serve",
            "--zk",
            "127.0.0.1:1",
            "--zk-auth-file",
            &missing.display().to_string(),
            "--listen",
            &taken,
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&missing.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // The flag warns (then the service cannot listen and stops).
    let o = run(
        &data,
        &[
            "serve",
            "--zk",
            "127.0.0.1:1",
            "--zk-auth",
            "u:p",
            "--listen",
            &taken,
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o)
            .contains("warning: --zk-auth on the command line is visible to every user in `ps`"),
        "{}",
        stderr(&o)
    );
}

/// Regression (issue 15): the budgets were configuration keys only. Each is a `serve` flag too,
/// which wins over the file, and whose help names its key and default.
#[test]
fn serve_budget_flags_override_the_configuration() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, serve) = service(
        tmp.path(),
        "max_events = 50\nmax_answer_bytes = 1000000000\nrequest_timeout_ms = 60000\n",
        &["--max-events", "3", "--max-requests", "2"],
        &[],
    );
    let (code, body) = get(port, "/api/query?q=*&limit=0").expect("an answer");
    assert_eq!(code, 200);
    assert_eq!(
        events_in(&body),
        3,
        "--max-events 3 wins over max_events = 50"
    );
    assert!(body.contains("\"truncated\":true"));
    drop(serve);
    let (port, serve) = service(
        tmp.path(),
        "max_answer_bytes = 1000000000\n",
        &["--max-answer-bytes", "4096"],
        &[],
    );
    let (_, body) = get(port, "/api/query?q=*&limit=1000").expect("an answer");
    assert!(events_in(&body) < 40 && body.contains("\"truncated\":true"));
    drop(serve);
    let (port, _serve) = service(
        tmp.path(),
        "request_timeout_ms = 60000\n",
        &["--request-timeout-ms", "1"],
        &[],
    );
    let heavy = vec!["*"; 1000].join("%20OR%20");
    let (code, body) = get(port, &format!("/api/query?q={heavy}&limit=0")).expect("answer");
    assert_eq!(code, 503, "{}", &body[..body.len().min(300)]);

    // The help names each key and its default.
    let help = run(Path::new("/nonexistent"), &["serve", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    use zklens::serve::config as c;
    for (flag, key, default) in [
        (
            "--max-events",
            "max_events",
            c::DEFAULT_MAX_EVENTS.to_string(),
        ),
        (
            "--max-answer-bytes",
            "max_answer_bytes",
            c::DEFAULT_MAX_ANSWER_BYTES.to_string(),
        ),
        (
            "--request-timeout-ms",
            "request_timeout_ms",
            c::DEFAULT_REQUEST_TIMEOUT_MS.to_string(),
        ),
        (
            "--max-requests",
            "max_requests",
            c::DEFAULT_MAX_REQUESTS.to_string(),
        ),
        (
            "--max-record-len",
            "max_record_len",
            zklens::txnlog::DEFAULT_MAX_RECORD_LEN.to_string(),
        ),
        (
            "--max-snapshot-sessions",
            "max_snapshot_sessions",
            zklens::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS.to_string(),
        ),
    ] {
        let at = help.find(flag).unwrap_or_else(|| panic!("{flag}: {help}"));
        let text = &help[at..];
        let text = &text[..text[2..].find(" --").map_or(text.len(), |i| i + 2)];
        assert!(
            text.contains(&format!("[default: {default}; config: {key}]")),
            "{text}"
        );
    }
}

/// Regression (issue 15): `/api/skew`, `/api/recipes` and an incident's HTML report had a time
/// budget but no size cap. Each is one computed whole, so one larger than `max_answer_bytes` is
/// refused (503, naming the limit) rather than cut; within the budget they answer as before.
#[test]
fn whole_answers_over_max_answer_bytes_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Live detection runs after a commit: one line to follow makes one.
    let extra = tmp.path().join("extra.log");
    std::fs::write(&extra, "2026-11-25 03:40:00,000 INFO one more line\n").expect("write");
    let source = format!("extra=file://{}", extra.display());
    let (port, serve) = service(
        tmp.path(),
        "max_answer_bytes = 200\n",
        &["--source", &source, "--commit-ms", "150", "--poll-ms", "50"],
        &[],
    );
    let t0 = Instant::now();
    let id = loop {
        let (_, body) = get(port, "/api/incidents").expect("an answer");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if let Some(id) = v[0]["incident"]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no incidents: {body} {}",
            std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for path in [
        "/api/skew".to_string(),
        "/api/recipes".to_string(),
        format!("/api/incidents/{id}/html"),
    ] {
        let (code, body) = get(port, &path).expect("an answer");
        assert_eq!(code, 503, "{path}: {}", &body[..body.len().min(300)]);
        assert!(
            body.contains("larger than the service's answer budget of 200 bytes (max_answer_bytes"),
            "{path}: {body}"
        );
    }
    // The --server client says why and exits 2.
    let out = remote(port, &["skew"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HTTP 503"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("max_answer_bytes"),
        "{}",
        stderr(&out)
    );
    drop(serve);
    // With the default budget they answer whole.
    let (port, _serve) = service(tmp.path(), "", &[], &[]);
    for path in ["/api/skew", "/api/recipes"] {
        let (code, body) = get(port, path).expect("an answer");
        assert_eq!(code, 200, "{path}: {body}");
        assert!(body.len() > 200, "{path}: {body}");
    }
}
