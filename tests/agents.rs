//! `zklens agent` on three hosts of a real ensemble (Debian's ZooKeeper 3.8, 3 servers on
//! loopback): three agents with three host identities (`--host h1/h2/h3`) on this machine, each
//! following the kazoo services whose registrations name its host and its ZooKeeper server's
//! log, shipping to one `zklens serve` over OTLP/HTTP.
//!
//! Faults: `kill -9` of one agent (its sources are listed as uncovered until it returns), of the
//! central service (the agents spool and drain in order when it returns; then again with its
//! data lost: the agents read everything again from its checkpoints), and of the ZooKeeper
//! leader (the failover incident names calc's primary change, noticed in the logs of both hosts).
//! A service moves from h3 to h1 (h1's agent takes it, h3's stops). A third-party shipper's
//! OTLP JSON is taken and deduplicated on resend.
//!
//! In the end every line of every log (the services' and the servers') is indexed exactly once:
//! the index holds, for each file, exactly the events `zklens ingest` gets from it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{exe, free_port, Ensemble};

const BASE_PORT: u16 = 22810;
const TOKEN: &str = "agent-test-token";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Proc {
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
    fn term(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct World {
    tmp: PathBuf,
    zk: String,
    port: u16,
}

impl World {
    fn host_dir(&self, host: &str) -> PathBuf {
        self.tmp.join(host)
    }

    fn service(&self, name: &str, instance: &str, host: &str) -> Proc {
        let dir = self.host_dir(host);
        let err = std::fs::File::create(self.tmp.join(format!("{instance}-{host}.stderr")))
            .expect("stderr file");
        Proc(
            Command::new("/usr/bin/python3")
                .arg(repo().join("samples/record/service.py"))
                .args(["--name", name, "--instance", instance, "--zk", &self.zk])
                .arg("--log-file")
                .arg(dir.join(format!("{instance}.log")))
                .args(["--host", host, "--timeout", "4"])
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .expect("start service.py"),
        )
    }

    fn serve(&self, ens: &Ensemble) -> Proc {
        let mut cfg = format!(
            "listen = \"127.0.0.1:{}\"\ntoken = \"{TOKEN}\"\ncommit_ms = 300\npoll_ms = 100\n\n[zookeeper]\nconnect = \"{}\"\nsession_timeout_ms = 6000\n",
            self.port, self.zk
        );
        // The servers' transaction logs are read here (the recipes); their text logs come
        // from the agents.
        for n in 1..=3 {
            cfg.push_str(&format!(
                "\n[[ensemble.server]]\nnode = \"zk{n}\"\nid = {n}\ndata_dir = \"{}\"\n",
                ens.dir.join(format!("zk{n}/data")).display()
            ));
        }
        let p = self.tmp.join("serve.toml");
        std::fs::write(&p, cfg).expect("config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.join("serve.log"))
            .expect("serve log");
        Proc(
            Command::new(exe())
                .env_remove("ZKLENS_DATA_DIR")
                .env_remove("ZKLENS_TOKEN")
                .arg("--data-dir")
                .arg(self.tmp.join("data"))
                .args(["serve", "-c"])
                .arg(&p)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start zklens serve"),
        )
    }

    /// The agent of `host`, following its ZooKeeper server `zkN`'s log; its health port.
    fn agent(&self, host: &str, n: u64, ens: &Ensemble, health: u16) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.join(format!("agent-{host}.log")))
            .expect("agent log");
        Proc(
            Command::new(exe())
                .env_remove("ZKLENS_DATA_DIR")
                .env_remove("ZKLENS_SERVER")
                .env("ZKLENS_TOKEN", TOKEN)
                .arg("--data-dir")
                .arg(self.tmp.join(format!("agent-{host}")))
                .args(["agent", "--zk", &self.zk])
                .args(["--server", &format!("http://127.0.0.1:{}", self.port)])
                .args([
                    "--host",
                    host,
                    "--session-timeout",
                    "4000",
                    "--flush-ms",
                    "500",
                ])
                .args(["--listen", &format!("127.0.0.1:{health}")])
                .arg("--allow-root")
                .arg(self.host_dir(host))
                .arg("--file")
                .arg(format!("zk{n}={}", ens.log(n).display()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start zklens agent"),
        )
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for f in ["serve.log", "agent-h1.log", "agent-h2.log", "agent-h3.log"] {
            let text = std::fs::read_to_string(self.tmp.join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- {f} (last lines)\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    fn wait_for<T>(&self, what: &str, secs: u64, f: impl FnMut() -> Option<T>) -> T {
        common::wait_until(what, secs, Duration::from_millis(250), || self.logs(), f)
    }
}

/// An HTTP request to 127.0.0.1:`port` with the token; the status and body.
fn request(port: u16, method: &str, path: &str, ctype: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn get(port: u16, path: &str) -> Option<Value> {
    let (code, body) = request(port, "GET", path, "text/plain", b"")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

fn count(port: u16, q: &str) -> u64 {
    let q = q.replace(' ', "%20").replace(':', "%3A");
    get(port, &format!("/api/query?q={q}&count=true"))
        .and_then(|v| v["total"].as_u64())
        .unwrap_or(0)
}

/// A metric of an agent's `/metrics`.
fn metric(health: u16, name: &str) -> Option<u64> {
    let (code, body) = request(health, "GET", "/metrics", "text/plain", b"")?;
    if code != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Each agent's host and the registrations it covers.
type Covered = Vec<(String, Vec<String>)>;

/// `/api/agents`: the hosts listed with their registrations, and the uncovered registrations.
fn agents(port: u16) -> Option<(Covered, Vec<String>)> {
    let v = get(port, "/api/agents")?;
    let list = v["agents"]
        .as_array()?
        .iter()
        .map(|a| {
            let regs = a["registrations"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (a["host"].as_str().unwrap_or_default().to_string(), regs)
        })
        .collect();
    let uncovered = v["uncovered"]
        .as_array()?
        .iter()
        .filter_map(|u| u["znode"].as_str().map(str::to_string))
        .collect();
    Some((list, uncovered))
}

fn covers(list: &[(String, Vec<String>)], host: &str, znode: &str) -> bool {
    list.iter()
        .any(|(h, regs)| h == host && regs.iter().any(|r| r == znode))
}

/// An event as compared: offset, line, time, kind, message.
type Row = (u64, u64, String, String, String);

fn row(v: &Value) -> Row {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (
        v["offset"].as_u64().unwrap_or(u64::MAX),
        v["line"].as_u64().unwrap_or(u64::MAX),
        text("ts"),
        text("kind"),
        text("message"),
    )
}

/// What `zklens ingest` gets from `file`.
fn ingested(tmp: &Path, file: &Path, k: usize) -> Vec<Row> {
    let data = tmp.join(format!("ingest-{k}"));
    let out = Command::new(exe())
        .env_remove("ZKLENS_DATA_DIR")
        .arg("--data-dir")
        .arg(&data)
        .arg("ingest")
        .arg(file)
        .output()
        .expect("zklens ingest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<Row> = common::indexed_rows(&data).iter().map(row).collect();
    rows.sort();
    rows
}

/// A third-party shipper's OTLP/JSON request (the Collector's shape, with file offsets).
fn third_party(lines: &[(u64, &str)]) -> Vec<u8> {
    let records: Vec<Value> = lines
        .iter()
        .map(|(off, text)| {
            json!({
                "observedTimeUnixNano": "1764000000000000000",
                "body": {"stringValue": text},
                "attributes": [
                    {"key": "log.file.path", "value": {"stringValue": "/var/log/legacy/legacy.log"}},
                    {"key": "log.file.offset", "value": {"intValue": off.to_string()}}
                ]
            })
        })
        .collect();
    serde_json::to_vec(&json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "host.name", "value": {"stringValue": "h9"}},
            {"key": "service.instance.id", "value": {"stringValue": "legacy-1"}}
        ]},
        "scopeLogs": [{"logRecords": records}]
    }]}))
    .expect("json")
}

#[test]
fn three_agents_ship_every_line_once_through_kills_a_failover_and_a_move() {
    if let Some(why) = common::missing_zookeeper(common::SERVER_JARS, true) {
        common::skip::<()>(why);
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let ens = Ensemble::start(tmp.path().join("ens"), 3, BASE_PORT);
    let w = World {
        tmp: tmp.path().to_path_buf(),
        zk: ens.harness(&["connect-string"]),
        port: free_port(),
    };
    for h in ["h1", "h2", "h3"] {
        std::fs::create_dir_all(w.host_dir(h)).expect("mkdir");
    }
    let mut calc_a = w.service("calc", "calc-a", "h1");
    let mut calc_b = w.service("calc", "calc-b", "h2");
    let mut web_c = w.service("web", "web-c", "h3");
    let mut serve = w.serve(&ens);
    common::wait_up(w.port);
    let health = [free_port(), free_port(), free_port()];
    let mut agent: Vec<Proc> = (0..3)
        .map(|i| w.agent(&format!("h{}", i + 1), i as u64 + 1, &ens, health[i]))
        .collect();

    // Each agent covers its host's registration; the lines of every node arrive.
    w.wait_for("each agent covering its host's service", 40, || {
        let (list, uncovered) = agents(w.port)?;
        (covers(&list, "h1", "/services/calc/calc-a")
            && covers(&list, "h2", "/services/calc/calc-b")
            && covers(&list, "h3", "/services/web/web-c")
            && uncovered.is_empty())
        .then_some(())
    });
    for node in ["calc-a", "calc-b", "web-c", "zk1", "zk2", "zk3"] {
        w.wait_for(&format!("{node}'s lines indexed"), 30, || {
            (count(w.port, &format!("node:{node}")) > 0).then_some(())
        });
    }
    let sources = get(w.port, "/api/sources").expect("/api/sources");
    let calc_a_src = sources["sources"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|s| {
                s["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/calc-a.log"))
            })
        })
        .cloned()
        .expect("calc-a's source");
    assert_eq!(calc_a_src["agent"], "h1", "{calc_a_src}");
    assert_eq!(
        calc_a_src["registration"], "/services/calc/calc-a",
        "{calc_a_src}"
    );

    // A third-party shipper (OTLP/JSON with file offsets): taken, and a resend is dropped.
    let tp = third_party(&[(0, "legacy started"), (15, "legacy serving")]);
    for _ in 0..2 {
        let (code, body) =
            request(w.port, "POST", "/v1/logs", "application/json", &tp).expect("POST");
        assert_eq!(code, 200, "{body}");
    }
    assert_eq!(
        count(w.port, "node:legacy-1"),
        2,
        "a resend is not indexed again"
    );

    // kill -9 of h2's agent: its registration is uncovered until it returns.
    agent[1].kill9();
    w.wait_for("calc-b uncovered after h2's agent died", 30, || {
        let (list, uncovered) = agents(w.port)?;
        (!list.iter().any(|(h, _)| h == "h2")
            && uncovered.iter().any(|z| z == "/services/calc/calc-b"))
        .then_some(())
    });
    agent[1] = w.agent("h2", 2, &ens, health[1]);
    w.wait_for("h2's agent back, covering calc-b", 40, || {
        let (list, uncovered) = agents(w.port)?;
        (covers(&list, "h2", "/services/calc/calc-b") && uncovered.is_empty()).then_some(())
    });

    // kill -9 of the service: the agents spool what is written meanwhile, then drain it.
    serve.kill9();
    w.wait_for("h1's agent spooling while the service is down", 30, || {
        (metric(health[0], "zklens_agent_spool_bytes")? > 0
            && metric(health[0], "zklens_agent_server_up")? == 0)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    serve = w.serve(&ens);
    common::wait_up(w.port);
    w.wait_for("the spools drained", 60, || {
        health
            .iter()
            .all(|&h| metric(h, "zklens_agent_spool_requests") == Some(0))
            .then_some(())
    });

    // kill -9 of the service with its data lost (a new disk, an older backup): the agents find
    // its checkpoints behind what they sent and read every file again from them.
    serve.kill9();
    std::fs::rename(tmp.path().join("data"), tmp.path().join("data-lost")).expect("rename");
    serve = w.serve(&ens);
    common::wait_up(w.port);
    w.wait_for(
        "every agent reading again from the service's checkpoints",
        60,
        || {
            health
                .iter()
                .all(|&h| metric(h, "zklens_agent_rewinds_total").is_some_and(|n| n >= 1))
                .then_some(())
        },
    );
    w.wait_for("zk3's log from its start again", 60, || {
        (count(w.port, "node:zk3") > 0 && count(w.port, "node:calc-b") > 0).then_some(())
    });

    // web-c moves from h3 to h1: h1's agent takes it, h3's stops.
    web_c.term();
    let mut web_c = w.service("web", "web-c", "h1");
    w.wait_for("h1's agent covering the moved web-c", 40, || {
        let (list, _) = agents(w.port)?;
        (covers(&list, "h1", "/services/web/web-c") && !covers(&list, "h3", "/services/web/web-c"))
            .then_some(())
    });

    // kill -9 of the ZooKeeper leader: the failover names calc's primary change, as both
    // hosts' logs tell it.
    let old = ens.leader();
    ens.harness(&["kill", &old.to_string()]);
    let inc = w.wait_for("a leader-failover with calc's primary change", 90, || {
        let list = get(w.port, "/api/incidents")?;
        list.as_array()?
            .iter()
            .map(|li| li["incident"].clone())
            .find(|i| {
                i["kind"] == "leader-failover"
                    && i["old_leader"] == old
                    && i["service_failovers"].as_array().is_some_and(|f| {
                        f.iter().any(|s| {
                            s["service"] == "calc"
                                && s["noticed"].as_array().is_some_and(|n| {
                                    let by = |node: &str| n.iter().any(|x| x["node"] == node);
                                    by("calc-a") && by("calc-b")
                                })
                        })
                    })
            })
    });
    let calc = inc["service_failovers"]
        .as_array()
        .and_then(|f| f.iter().find(|s| s["service"] == "calc"))
        .cloned()
        .expect("calc's row");
    assert_ne!(calc["from"], calc["to"], "{calc}");
    let evidence = calc["noticed"].to_string();
    assert!(
        evidence.contains("agent://h1/") && evidence.contains("agent://h2/"),
        "the primary change as both hosts' logs tell it: {evidence}"
    );

    // Everything stops; the agents ship the rest.
    for p in [&mut calc_a, &mut calc_b, &mut web_c] {
        p.term();
    }
    ens.harness(&["stop-all"]);
    let mut last = 0;
    let mut still = 0;
    w.wait_for("the agents idle with empty spools", 60, || {
        let lines: u64 = health
            .iter()
            .map(|&h| metric(h, "zklens_agent_lines_total").unwrap_or(u64::MAX))
            .sum();
        let empty = health
            .iter()
            .all(|&h| metric(h, "zklens_agent_spool_requests") == Some(0));
        still = if lines == last && empty { still + 1 } else { 0 };
        last = lines;
        (still >= 8).then_some(())
    });
    for a in agent.iter_mut() {
        a.term();
    }
    serve.term();

    // Exactly once: for every log, the index holds what `zklens ingest` gets from the file.
    let rows = common::indexed_rows(&tmp.path().join("data"));
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (h, names) in [
        ("h1", vec!["calc-a.log", "web-c.log"]),
        ("h2", vec!["calc-b.log"]),
        ("h3", vec!["web-c.log"]),
    ] {
        for n in names {
            let p = w.host_dir(h).join(n);
            files.push((format!("agent://{h}{}", p.display()), p));
        }
    }
    for n in 1..=3u64 {
        let p = ens.log(n);
        files.push((format!("agent://h{n}{}", p.display()), p));
    }
    let mut total = 0;
    for (k, (key, path)) in files.iter().enumerate() {
        let want = ingested(tmp.path(), path, k);
        let mut got: Vec<Row> = rows
            .iter()
            .filter(|r| r["source"] == key.as_str())
            .map(row)
            .collect();
        got.sort();
        assert!(!want.is_empty(), "{} is empty", path.display());
        if got != want {
            let missing: Vec<&Row> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
            let extra: Vec<&Row> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
            panic!(
                "{key}: {} events indexed, {} in the file; missing {missing:?}; extra or twice {extra:?}\n{}",
                got.len(),
                want.len(),
                w.logs()
            );
        }
        total += got.len();
    }
    // The moved service's history: both hosts' files under one node, h3's before h1's.
    let web: Vec<&Value> = rows.iter().filter(|r| r["node"] == "web-c").collect();
    let on = |h: &str| {
        let mut ts: Vec<&str> = web
            .iter()
            .filter(|r| {
                r["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&format!("agent://{h}/")))
            })
            .filter_map(|r| r["ts"].as_str())
            .collect();
        ts.sort_unstable();
        ts
    };
    let (h3, h1) = (on("h3"), on("h1"));
    assert!(
        !h3.is_empty() && !h1.is_empty(),
        "web-c's history on both hosts"
    );
    assert!(h3.last() <= h1.first(), "h3's lines end before h1's begin");
    eprintln!(
        "{total} events from {} files, each exactly once",
        files.len()
    );
    if std::env::var_os("ZKLENS_TEST_VERBOSE").is_some() {
        eprintln!("{calc}\n{}", w.logs());
    }
}
