//! `POST /v1/logs` on a running `zklens serve`: a real ZooKeeper server's log
//! (`samples/incident-1`), shipped as OTLP/HTTP the way the OpenTelemetry Collector's filelog
//! receiver and `zklens agent` send it, must index exactly the events `zklens ingest` gets from
//! the file — through resends, gzip, protobuf and JSON, and a `kill -9` of the service
//! between two requests. Hostile requests are refused with the right status and touch nothing.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{exe, free_port, wait_up, Serve};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::json;

const TOKEN: &str = "otlp-test-token";

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-1/zk1/logs/zookeeper.log")
}

fn serve(data: &Path, port: u16, token: Option<&str>, log: &Path) -> Serve {
    let mut c = Command::new(exe());
    c.env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .env_remove("ZKLENS_TOKEN")
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--commit-ms", "5000"]);
    if let Some(t) = token {
        c.env("ZKLENS_TOKEN", t);
    }
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("serve log");
    c.stdout(Stdio::null()).stderr(err);
    Serve(c.spawn().expect("start zklens serve"))
}

/// Status and body of a request with `body` (None: no answer).
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let at = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..at]).to_string();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, out[at + 4..].to_vec()))
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn post(port: u16, ctype: &str, extra: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let auth = bearer();
    let mut headers = vec![("Content-Type", ctype), ("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    let (code, body) = request(port, "POST", "/v1/logs", &headers, body).expect("an answer");
    (code, String::from_utf8_lossy(&body).to_string())
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let auth = bearer();
    let (code, body) =
        request(port, "GET", path, &[("Authorization", auth.as_str())], b"").expect("an answer");
    assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// The sample's lines: (byte offset, line number, text).
fn lines() -> Vec<(u64, u64, String)> {
    let text = std::fs::read_to_string(sample()).expect("sample");
    let mut out = Vec::new();
    let mut off = 0u64;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        out.push((off, i as u64 + 1, l.trim_end_matches('\n').to_string()));
        off += l.len() as u64;
    }
    out
}

/// The lines cut into requests of about `n`, between entries (a shipper's multiline rule:
/// a line that starts with a date starts an entry).
fn requests(all: &[(u64, u64, String)], n: usize) -> Vec<&[(u64, u64, String)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..all.len() {
        if i - start >= n && all[i].2.starts_with("20") {
            out.push(&all[start..i]);
            start = i;
        }
    }
    out.push(&all[start..]);
    out
}

/// OTLP/JSON as the OpenTelemetry Collector's filelog receiver writes it (with
/// `include_file_path` and `include_file_record_number`, plus a `log.file.offset` set by the
/// pipeline): line numbers and offsets as attributes, the host as a resource attribute.
fn collector_json(lines: &[(u64, u64, String)]) -> Vec<u8> {
    let records: Vec<_> = lines
        .iter()
        .map(|(off, n, text)| {
            json!({
                "observedTimeUnixNano": "1764000000000000000",
                "body": {"stringValue": text},
                "attributes": [
                    {"key": "log.file.path", "value": {"stringValue": "/var/log/zookeeper/zookeeper.log"}},
                    {"key": "log.file.name", "value": {"stringValue": "zookeeper.log"}},
                    {"key": "log.file.record_number", "value": {"intValue": n.to_string()}},
                    {"key": "log.file.offset", "value": {"intValue": off.to_string()}},
                ],
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "resourceLogs": [{
            "resource": {"attributes": [
                {"key": "host.name", "value": {"stringValue": "zk1"}},
            ]},
            "scopeLogs": [{"scope": {"name": "filelog"}, "logRecords": records}],
        }]
    }))
    .expect("JSON")
}

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

fn i(v: u64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::IntValue(v as i64)),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..Default::default()
    }
}

/// OTLP protobuf as `zklens agent` sends it: its own source key, offsets and line numbers.
fn agent_protobuf(lines: &[(u64, u64, String)]) -> Vec<u8> {
    let log_records = lines
        .iter()
        .map(|(off, n, text)| LogRecord {
            body: s(text),
            attributes: vec![
                kv(
                    "zklens.source",
                    s("agent://host-b/var/log/zookeeper/zookeeper.log"),
                ),
                kv("zklens.offset", i(*off)),
                kv("zklens.line", i(*n)),
                kv("zklens.format", s("zookeeper-log4j")),
            ],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.instance.id", s("zk2")),
                    kv("host.name", s("host-b")),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

/// An event as compared: node, offset, line, time, kind, message.
type Row = (String, u64, u64, String, String, String);

/// Every event in the index of `data`, sorted.
fn events(data: &Path) -> Vec<Row> {
    let mut got: Vec<Row> = common::indexed_rows(data)
        .iter()
        .map(|v| {
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (
                text("node"),
                v["offset"].as_u64().unwrap_or(u64::MAX),
                v["line"].as_u64().unwrap_or(u64::MAX),
                text("ts"),
                text("kind"),
                text("message"),
            )
        })
        .collect();
    got.sort();
    got
}

/// What `zklens ingest` indexes from the sample file, as node `node`.
fn ingested(tmp: &Path, node: &str) -> Vec<Row> {
    let data = tmp.join(format!("ingest-{node}"));
    let dir = tmp.join(format!("files-{node}/{node}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(sample(), dir.join("zookeeper.log")).expect("copy");
    let out = Command::new(exe())
        .env_remove("ZKLENS_DATA_DIR")
        .arg("--data-dir")
        .arg(&data)
        .arg("ingest")
        .arg(tmp.join(format!("files-{node}")))
        .output()
        .expect("zklens ingest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    events(&data)
}

#[test]
fn shipped_logs_are_indexed_exactly_once_through_resends_and_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let port = free_port();
    let mut srv = serve(&data, port, Some(TOKEN), &log);
    wait_up(port);
    let all = lines();
    let chunks = requests(&all, 60);
    assert!(chunks.len() >= 8, "{} requests", chunks.len());
    let half = chunks.len() / 2;
    // A collector (JSON, gzip) and an agent (protobuf) ship the same file from two hosts.
    for (k, c) in chunks[..half].iter().enumerate() {
        let (code, body) = post(port, "application/json", &[], &collector_json(c));
        assert_eq!((code, body.as_str()), (200, "{}"));
        let (code, _) = post(
            port,
            "application/x-protobuf",
            &[("Content-Encoding", "gzip")],
            &gzip(&agent_protobuf(c)),
        );
        assert_eq!(code, 200);
        if k == 1 {
            // An answer lost: both resend the same request.
            assert_eq!(
                post(port, "application/json", &[], &collector_json(c)).0,
                200
            );
            assert_eq!(
                post(port, "application/x-protobuf", &[], &agent_protobuf(c)).0,
                200
            );
        }
    }
    // Acknowledged means committed, although the service commits on its own only every 5 s:
    // kill -9 now, and everything answered 200 is in the index.
    let agent_key = "agent://host-b/var/log/zookeeper/zookeeper.log";
    let cp = get_json(port, &format!("/api/checkpoints?source={agent_key}"));
    let sent: usize = chunks[..half].iter().map(|c| c.len()).sum();
    assert_eq!(
        cp["checkpoint"]["offset"].as_u64(),
        Some(all[sent].0),
        "{cp}"
    );
    let _ = srv.0.kill();
    let _ = srv.0.wait();
    drop(srv);
    let mut srv = serve(&data, port, Some(TOKEN), &log);
    wait_up(port);
    // The agent asks where to resume; the collector, restarted, sends everything again.
    let cp = get_json(port, &format!("/api/checkpoints?source={agent_key}"));
    let resume = cp["checkpoint"]["offset"].as_u64().expect("a checkpoint");
    assert_eq!(resume, all[sent].0);
    for c in &chunks {
        assert_eq!(
            post(port, "application/json", &[], &collector_json(c)).0,
            200
        );
        if c[0].0 >= resume {
            assert_eq!(
                post(port, "application/x-protobuf", &[], &agent_protobuf(c)).0,
                200
            );
        }
    }
    let metrics = {
        let auth = bearer();
        let (_, b) = request(
            port,
            "GET",
            "/metrics",
            &[("Authorization", auth.as_str())],
            b"",
        )
        .expect("metrics");
        String::from_utf8_lossy(&b).to_string()
    };
    let dups: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("zklens_otlp_duplicates_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the duplicates counter");
    // After the restart: the collector's first half again, all of it a resend.
    assert_eq!(dups, sent as u64, "{metrics}");
    let _ = srv.0.kill();
    let _ = srv.0.wait();
    drop(srv);

    let got = events(&data);
    let mut want = ingested(tmp.path(), "zk1");
    want.extend(ingested(tmp.path(), "zk2"));
    want.sort();
    assert!(want.len() > 600, "{} events ingested", want.len());
    assert!(
        want.iter().any(|e| e.4 != "log"),
        "classified events among them"
    );
    assert_eq!(
        got.len(),
        want.len(),
        "events through OTLP against zklens ingest"
    );
    assert_eq!(got, want);
}

#[test]
fn hostile_or_unauthorised_requests_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("serve.log");
    // Without a token the service takes no logs at all.
    let port = free_port();
    let srv = serve(&tmp.path().join("open"), port, None, &log);
    wait_up(port);
    let body = collector_json(&lines()[..5]);
    let (code, answer) = post(port, "application/json", &[], &body);
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("token"), "{answer}");
    drop(srv);

    let data = tmp.path().join("data");
    let port = free_port();
    let srv = serve(&data, port, Some(TOKEN), &log);
    wait_up(port);
    let (code, _) = request(
        port,
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer nope"),
        ],
        &body,
    )
    .expect("an answer");
    assert_eq!(code, 401);
    let (code, answer) = post(port, "text/plain", &[], &body);
    assert_eq!(code, 415, "{answer}");
    // Broken JSON: 400, naming the byte offset where it breaks.
    let mut broken = body.clone();
    broken.truncate(body.len() / 2);
    let (code, answer) = post(port, "application/json", &[], &broken);
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("offset"), "{answer}");
    let (code, answer) = post(
        port,
        "application/x-protobuf",
        &[],
        b"\xff\xff\xff\xff\x0f garbage",
    );
    assert_eq!(code, 400, "{answer}");
    // A gzip bomb stops at the limit (16 MiB decompressed).
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let (code, answer) = post(
        port,
        "application/json",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("limit"), "{answer}");
    let (code, answer) = post(
        port,
        "application/json",
        &[("Content-Encoding", "br")],
        &body,
    );
    assert_eq!(code, 400, "{answer}");
    // The good request still goes in after all that.
    assert_eq!(post(port, "application/json", &[], &body).0, 200);
    drop(srv);
    let got = events(&data);
    assert_eq!(got.len(), 5, "{got:?}");
}
