//! `zklens trace`: a session and an incident of `samples/incident-1` sent as OTLP/HTTP to a real
//! receiver (`tests/trace/receiver.py`, built on the `opentelemetry-proto` package from PyPI,
//! which decodes the protobuf with the official generated classes), and the span tree, hex ids,
//! times, status and attributes checked against what `zklens session` and `zklens incident`
//! say. The ShiViz log is checked against ShiViz's parsing rules.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use common::{exe, sample_index, stdout_of};

const SESSION: &str = "0x10000fef8870000";

fn zklens(data: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(exe())
        .env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run zklens");
    stdout_of(out, &format!("zklens {args:?}"))
}

fn ns(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("rfc3339")
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .expect("ns")
}

/// A receiver on a free port; what it decoded, one request per element.
struct Receiver {
    child: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Receiver {
    fn start(python: &Path, out: &Path) -> Receiver {
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trace/receiver.py"))
            .arg(out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        Receiver {
            child,
            port: line.trim().parse().expect("port number"),
            out: out.to_path_buf(),
        }
    }

    fn requests(&self) -> Vec<Vec<Value>> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("json line");
                v["spans"].as_array().cloned().unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// Checks the tree: one trace id, ids in hex, one root, every parent in the trace, every child
/// within its parent's time. Returns the root.
fn tree(spans: &[Value]) -> Value {
    let trace = spans[0]["trace_id"].as_str().expect("trace id").to_string();
    assert!(is_hex(&trace, 32), "{trace}");
    let ids: BTreeSet<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "span ids are unique");
    let roots: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parent_span_id"].as_str() == Some(""))
        .collect();
    assert_eq!(roots.len(), 1, "one root");
    let by_id: BTreeMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap_or_default(), s))
        .collect();
    for s in spans {
        assert_eq!(s["trace_id"], trace.as_str());
        assert!(is_hex(s["span_id"].as_str().unwrap_or_default(), 16), "{s}");
        let (start, end) = (
            s["start"].as_u64().unwrap_or(0),
            s["end"].as_u64().unwrap_or(0),
        );
        assert!(start > 0 && start <= end, "{}: {start}..{end}", s["name"]);
        for e in s["events"].as_array().into_iter().flatten() {
            let t = e["time"].as_u64().unwrap_or(0);
            assert!(
                start <= t && t <= end,
                "{}'s event {} at {t} outside",
                s["name"],
                e["name"]
            );
        }
        let p = s["parent_span_id"].as_str().unwrap_or_default();
        if !p.is_empty() {
            assert!(
                by_id.contains_key(p),
                "{}'s parent {p} is in the trace",
                s["name"]
            );
        }
    }
    roots[0].clone()
}

#[test]
fn a_session_and_an_incident_reach_a_real_otlp_receiver() {
    let Some(python) =
        common::python_with("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    else {
        return;
    };
    let data = sample_index();
    let tmp = tempfile::tempdir().expect("tmp");
    let rx = Receiver::start(&python, &tmp.path().join("received.jsonl"));
    let url = format!("http://127.0.0.1:{}", rx.port);

    // The session: created on zk1, expired; its ephemerals lost with it.
    zklens(data, &["trace", "session", SESSION, "--otlp", &url]);
    let events: Vec<Value> =
        String::from_utf8_lossy(&zklens(data, &["session", SESSION, "-o", "jsonl"]))
            .lines()
            .map(|l| serde_json::from_str(l).expect("row"))
            .collect();
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .and_then(|e| e["ts"].as_str())
            .map(ns)
            .unwrap_or_else(|| panic!("the session's {kind}"))
    };
    let got = rx.requests();
    assert_eq!(got.len(), 1, "one request");
    let spans = &got[0];
    let root = tree(spans);
    assert_eq!(root["name"], "zookeeper.session");
    assert_eq!(root["status"]["code"], 2, "ERROR: it expired");
    assert_eq!(root["attributes"]["zookeeper.session.id"], SESSION);
    assert_eq!(root["attributes"]["zookeeper.session.outcome"], "expired");
    assert_eq!(root["attributes"]["zookeeper.session.server_id"], 1);
    assert_eq!(
        root["resource"]["zookeeper.node"], "zk1",
        "created by server 1"
    );
    assert_eq!(root["start"].as_u64(), Some(at("txn.createSession")));
    assert_eq!(root["end"].as_u64(), Some(at("txn.closeSession")));
    let lost = root["attributes"]["zookeeper.ephemerals.lost"].to_string();
    assert!(lost.contains("/services/calc/calc-b"), "{lost}");
    let nodes: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s["parent_span_id"] == root["span_id"])
        .filter_map(|s| s["resource"]["zookeeper.node"].as_str())
        .collect();
    for n in ["zk1", "zk2", "calc-b"] {
        assert!(nodes.contains(n), "a span on {n}: {nodes:?}");
    }
    let client = spans
        .iter()
        .find(|s| s["name"] == "zookeeper.client.session")
        .expect("the client's span");
    assert_eq!(client["resource"]["zookeeper.role"], "client");
    let kinds: Vec<&str> = client["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(kinds.contains(&"client.session_expired"), "{kinds:?}");
    assert!(kinds.contains(&"client.disconnected"), "{kinds:?}");
    let session_trace = root["trace_id"].as_str().expect("id").to_string();

    // Exported again: the same ids (printed as OTLP/JSON this time).
    let json: Value =
        serde_json::from_slice(&zklens(data, &["trace", "session", SESSION])).expect("otlp json");
    let again = json["resourceSpans"].to_string();
    assert!(again.contains(&session_trace), "the same trace id");
    assert!(
        again.contains(root["span_id"].as_str().expect("id")),
        "the same root id"
    );

    // The session's expiry incident: a root linked to the session's trace, phases per node.
    let id = format!("session-expiry-{SESSION}");
    zklens(data, &["trace", "incident", &id, "--otlp", &url]);
    let report: Value = serde_json::from_slice(&zklens(data, &["incident", &id, "-o", "json"]))
        .expect("incident json");
    let spans = &rx.requests()[1];
    let root = tree(spans);
    assert_eq!(root["name"], "zookeeper.incident.session-expiry");
    assert_eq!(root["status"]["code"], 2);
    assert_eq!(root["attributes"]["zookeeper.incident.id"], id.as_str());
    assert_eq!(
        root["start"].as_u64(),
        report["started_at"].as_str().map(ns)
    );
    assert_eq!(root["end"].as_u64(), report["ended_at"].as_str().map(ns));
    let links = root["links"].as_array().expect("links");
    assert!(
        links
            .iter()
            .any(|l| l["trace_id"] == session_trace.as_str()),
        "linked to the session's trace: {links:?}"
    );
    let steps = report["steps"].as_array().expect("steps").len();
    let events: usize = spans
        .iter()
        .map(|s| s["events"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(events, steps, "every step once, as a span event");
    assert!(spans
        .iter()
        .any(|s| s["name"] == "zookeeper.session_expiry"));

    // A leader failover: election spans on the servers that took part.
    zklens(
        data,
        &[
            "trace",
            "incident",
            "leader-failover-epoch-2",
            "--otlp",
            &url,
        ],
    );
    let spans = &rx.requests()[2];
    let root = tree(spans);
    assert_eq!(root["name"], "zookeeper.incident.leader-failover");
    assert_eq!(root["attributes"]["zookeeper.incident.new_leader"], 2);
    let elections: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s["name"] == "zookeeper.election")
        .filter_map(|s| s["resource"]["zookeeper.node"].as_str())
        .collect();
    assert!(
        elections.contains("zk1") && elections.contains("zk2"),
        "{elections:?}"
    );
}

#[test]
fn a_zxid_trace_shows_the_transaction_in_each_servers_log() {
    let data = sample_index();
    let json: Value = serde_json::from_slice(&zklens(data, &["trace", "zxid", "0x200000001"]))
        .expect("otlp json");
    let spans: Vec<(String, String)> = json["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| {
            let node = rs["resource"]["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|kv| kv["key"] == "zookeeper.node"))
                .and_then(|kv| kv["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_string();
            rs["scopeSpans"][0]["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |s| {
                    (
                        node.clone(),
                        s["name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let logged: BTreeSet<&str> = spans
        .iter()
        .filter(|(_, n)| n == "zookeeper.txnlog")
        .map(|(node, _)| node.as_str())
        .collect();
    // The record's replicas, as `zklens zxid` finds them.
    let rows =
        String::from_utf8_lossy(&zklens(data, &["zxid", "0x200000001", "-o", "jsonl"])).to_string();
    for n in ["zk1", "zk2"] {
        assert!(logged.contains(n), "{n}'s log holds it: {logged:?}\n{rows}");
    }
    assert_eq!(
        spans.iter().filter(|(_, n)| n == "zookeeper.txn").count(),
        1
    );
    assert!(
        !spans
            .iter()
            .any(|(_, n)| n.contains("proposal") || n.contains("commit")),
        "no span that no log records"
    );
}

#[test]
fn the_shiviz_log_follows_shivizs_parsing_rules() {
    let data = sample_index();
    let text = String::from_utf8(zklens(
        data,
        &[
            "trace",
            "incident",
            "leader-failover-epoch-2",
            "-o",
            "shiviz",
        ],
    ))
    .expect("utf-8");
    let (regex, rest) = text.split_once('\n').expect("a regex line");
    let log = rest.strip_prefix('\n').expect("an empty delimiter line");
    let re = regex::Regex::new(regex).expect("the regex compiles");
    let names: BTreeSet<&str> = re.capture_names().flatten().collect();
    assert_eq!(names, BTreeSet::from(["clock", "event", "host"]));
    let report: Value = serde_json::from_slice(&zklens(
        data,
        &["incident", "leader-failover-epoch-2", "-o", "json"],
    ))
    .expect("json");
    let mut last: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut n = 0;
    for c in re.captures_iter(log) {
        n += 1;
        let host = c["host"].to_string();
        let clock: BTreeMap<String, u64> = serde_json::from_str(&c["clock"]).expect("clock JSON");
        let own = clock.get(&host).copied().unwrap_or(0);
        assert!(
            own >= 1,
            "the clock holds the event's own host: {host} {clock:?}"
        );
        if let Some(prev) = last.get(&host) {
            assert_eq!(own, prev[&host] + 1, "{host}'s own count grows by one");
            for (k, v) in prev {
                assert!(
                    clock.get(k).copied().unwrap_or(0) >= *v,
                    "monotonic: {host} {k}"
                );
            }
        } else {
            assert_eq!(own, 1);
        }
        assert!(!c["event"].is_empty());
        last.insert(host, clock);
    }
    assert_eq!(
        n,
        report["steps"].as_array().map_or(0, Vec::len),
        "every step once"
    );
    // Causality crosses hosts: some clock knows of another host.
    assert!(last.values().any(|c| c.len() > 1), "{last:?}");
}

#[test]
fn serve_exports_incidents_and_their_sessions_as_they_are_recognised() {
    let Some(python) =
        common::python_with("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let rx = Receiver::start(&python, &tmp.path().join("received.jsonl"));
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-1");
    let port = common::free_port();
    let mut cfg = format!(
        "listen = \"127.0.0.1:{port}\"\ncommit_ms = 300\npoll_ms = 100\n\n[export.otlp]\nendpoint = \"http://127.0.0.1:{}\"\nsettle_ms = 500\n",
        rx.port
    );
    for n in 1..=3 {
        let d = sample.join(format!("zk{n}"));
        cfg.push_str(&format!(
            "\n[[ensemble.server]]\nnode = \"zk{n}\"\nid = {n}\nlogs = [\"{}\"]\ndata_dir = \"{}\"\n",
            d.join("logs/zookeeper.log").display(),
            d.join("data").display()
        ));
    }
    for c in ["calc-a", "calc-b"] {
        cfg.push_str(&format!(
            "\n[[sources]]\nnode = \"{c}\"\nurl = \"file://{}\"\n",
            sample.join(format!("{c}/logs/{c}.log")).display()
        ));
    }
    let cfg_path = tmp.path().join("serve.toml");
    std::fs::write(&cfg_path, cfg).expect("config");
    let log = tmp.path().join("serve.log");
    let _serve = common::Serve(
        Command::new(exe())
            .env_remove("ZKLENS_DATA_DIR")
            .env_remove("ZKLENS_TOKEN")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .args(["serve", "-c"])
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start zklens serve"),
    );
    let roots = || -> Vec<Value> {
        rx.requests()
            .into_iter()
            .flatten()
            .filter(|s| s["parent_span_id"] == "")
            .collect()
    };
    let context = || std::fs::read_to_string(&log).unwrap_or_default();
    let expiry = format!("session-expiry-{SESSION}");
    let (incident, session) = common::wait_until(
        "the failover, the expiry and its session exported",
        90,
        std::time::Duration::from_millis(250),
        context,
        || {
            let r = roots();
            let named = |k: &str, v: &str| r.iter().find(|s| s["attributes"][k] == v).cloned();
            named("zookeeper.incident.id", "leader-failover-epoch-2")?;
            Some((
                named("zookeeper.incident.id", &expiry)?,
                named("zookeeper.session.id", SESSION)?,
            ))
        },
    );
    assert_eq!(session["name"], "zookeeper.session");
    assert!(
        incident["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["trace_id"] == session["trace_id"])),
        "the expiry links to the session's exported trace"
    );
    // The same trace as the command line builds from the same logs.
    let cli: Value =
        serde_json::from_slice(&zklens(sample_index(), &["trace", "session", SESSION]))
            .expect("otlp json");
    assert!(cli
        .to_string()
        .contains(session["trace_id"].as_str().expect("id")));
    let metrics = common::http_get(port, "/metrics").expect("metrics").1;
    assert!(
        metrics.contains("zklens_trace_export_traces_total"),
        "{metrics}"
    );
}
