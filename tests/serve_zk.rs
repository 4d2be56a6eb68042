//! `zklens serve` next to a real ensemble (Debian's ZooKeeper 3.8, 3 servers on loopback) with
//! real kazoo services registering ephemeral znodes and writing logs: discovery within seconds,
//! their lines indexed, a hostile registration refused, a late registration picked up, an
//! expired one shown as gone with its history kept, and a leader kill reported by the API as a
//! `leader-failover` naming the right old and new leader within 30 s.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::Ensemble;

const BASE_PORT: u16 = 28810;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn available() -> bool {
    let ok = Path::new("/usr/share/java/zookeeper.jar").exists()
        && Command::new("/usr/bin/python3")
            .args(["-c", "import kazoo"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("ZKLENS_REQUIRE_ORACLE").is_some() {
        panic!("Debian's zookeeper and python3-kazoo are required (ZKLENS_REQUIRE_ORACLE is set)");
    }
    if !ok {
        eprintln!(
            "skipped: needs Debian's zookeeper package and python3-kazoo (.ci/run installs them)"
        );
    }
    ok
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn service(zk: &str, name: &str, instance: &str, logs: &Path) -> Proc {
    let out = std::fs::File::create(logs.join(format!("{instance}.stderr"))).expect("stderr file");
    Proc(
        Command::new("/usr/bin/python3")
            .arg(repo().join("samples/record/service.py"))
            .args(["--name", name, "--instance", instance, "--zk", zk])
            .arg("--log-file")
            .arg(logs.join(format!("{instance}.log")))
            .args(["--timeout", "4"])
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start service.py"),
    )
}

/// Creates a persistent znode with raw data (kazoo), for registrations no service owns.
fn put_znode(zk: &str, path: &str, data_py: &str) {
    let script = format!(
        "from kazoo.client import KazooClient\nzk=KazooClient(hosts='{zk}')\nzk.start(10)\nzk.ensure_path('{parent}')\nzk.create('{path}', {data_py})\nzk.stop()\n",
        parent = path.rsplit_once('/').map_or("/", |p| p.0),
    );
    let st = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .status()
        .expect("kazoo");
    assert!(st.success(), "creating {path}");
}

fn get(port: u16, path: &str) -> Option<Value> {
    serde_json::from_str(&get_text(port, path)?).ok()
}

fn get_text(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(body.to_string())
}

static SERVE_LOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn wait_for<T>(what: &str, secs: u64, f: impl FnMut() -> Option<T>) -> T {
    let log = || {
        let text = SERVE_LOG
            .get()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        format!("serve log:\n{text}")
    };
    common::wait_until(what, secs, Duration::from_millis(250), log, f)
}

fn count(port: u16, q: &str) -> u64 {
    let q = q.replace(' ', "%20").replace(':', "%3A");
    get(port, &format!("/api/query?q={q}&count=true"))
        .and_then(|v| v["total"].as_u64())
        .unwrap_or(0)
}

fn registration_state(port: u16, instance: &str) -> Option<String> {
    let v = get(port, "/api/registrations")?;
    v["registrations"].as_object()?.values().find_map(|r| {
        (r["registration"]["instance"] == instance)
            .then(|| r["state"].as_str().unwrap_or_default().to_string())
    })
}

#[test]
fn serve_discovers_follows_and_reports_a_leader_failover() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let ens = Ensemble::start(tmp.path().join("ens"), 3, BASE_PORT);
    let zk = ens.harness(&["connect-string"]);
    let logs = tmp.path().join("svc");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let _a = service(&zk, "calc", "calc-a", &logs);
    let b = service(&zk, "calc", "calc-b", &logs);

    // Hostile registrations: a file outside the allowed roots, and data that is not JSON.
    put_znode(
        &zk,
        "/services/evil/evil-1",
        "b'{\"service\":\"evil\",\"instance\":\"evil-1\",\"logs\":[{\"url\":\"file:///etc/passwd\"}]}'",
    );
    put_znode(&zk, "/services/junk/junk-1", "b'\\xff\\x00 not json'");

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut cfg = format!(
        "listen = \"127.0.0.1:{port}\"\ntoken = \"t0ken\"\ncommit_ms = 300\npoll_ms = 100\n\n[zookeeper]\nconnect = \"{zk}\"\nsession_timeout_ms = 6000\n\n[security]\nallowed_roots = [\"{}\"]\n",
        logs.display()
    );
    for n in 1..=3 {
        let d = ens.dir.join(format!("zk{n}"));
        cfg.push_str(&format!(
            "\n[[ensemble.server]]\nnode = \"zk{n}\"\nid = {n}\nlogs = [\"{}\"]\ndata_dir = \"{}\"\n",
            d.join("logs/zookeeper.log").display(),
            d.join("data").display()
        ));
    }
    let cfg_path = tmp.path().join("serve.toml");
    std::fs::write(&cfg_path, cfg).expect("config");
    let serve_log = tmp.path().join("serve.log");
    let _ = SERVE_LOG.set(serve_log.clone());
    let _serve = Proc(
        Command::new(env!("CARGO_BIN_EXE_zklens"))
            .env_remove("ZKLENS_DATA_DIR")
            .env_remove("ZKLENS_TOKEN")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("serve")
            .arg("-c")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&serve_log).expect("serve log"))
            .spawn()
            .expect("start zklens serve"),
    );
    let log = || std::fs::read_to_string(&serve_log).unwrap_or_default();

    // Discovered within seconds, and their lines indexed.
    for inst in ["calc-a", "calc-b"] {
        wait_for(&format!("{inst} registered"), 20, || {
            (registration_state(port, inst).as_deref() == Some("up")).then_some(())
        });
        wait_for(&format!("{inst}'s lines indexed"), 20, || {
            (count(port, &format!("node:{inst}")) > 0).then_some(())
        });
    }
    // The ensemble's own logs too.
    wait_for("server lines indexed", 20, || {
        (count(port, "node:zk1") > 0).then_some(())
    });
    // Refusals are visible, never followed.
    let src = get(port, "/api/sources").expect("/api/sources");
    let refusals = src["refusals"].to_string();
    assert!(refusals.contains("/etc/passwd"), "{refusals}\n{}", log());
    assert!(refusals.contains("junk-1"), "{refusals}\n{}", log());
    let passwd = src["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["url"] == "file:///etc/passwd"))
        .expect("the refused source is listed");
    assert!(passwd["state"]
        .as_str()
        .unwrap_or_default()
        .starts_with("refused"));
    assert_eq!(
        count(port, "node:evil-1"),
        0,
        "nothing from /etc/passwd indexed"
    );

    // A service that registers after start-up is picked up.
    let _c = service(&zk, "calc", "calc-c", &logs);
    wait_for("calc-c picked up", 20, || {
        (count(port, "node:calc-c") > 0).then_some(())
    });

    // A service whose session expires is shown as gone, its history kept.
    let before = count(port, "node:calc-b");
    drop(b); // SIGKILL: the session expires after its 4 s timeout, the ephemeral znode goes
    wait_for("calc-b gone", 30, || {
        (registration_state(port, "calc-b").as_deref() == Some("gone")).then_some(())
    });
    assert!(
        count(port, "node:calc-b") >= before,
        "calc-b's history is kept"
    );

    // Kill the leader: the API reports the failover with the right leaders within 30 s.
    let old = ens.leader();
    ens.harness(&["kill", &old.to_string()]);
    let new = ens.leader();
    assert_ne!(old, new);
    let t_elected = Instant::now();
    let inc = wait_for("a leader-failover incident", 45, || {
        let list = get(port, "/api/incidents")?;
        list.as_array()?
            .iter()
            .map(|li| li["incident"].clone())
            .find(|i| i["kind"] == "leader-failover" && i["old_leader"] == old)
    });
    let waited = t_elected.elapsed();
    assert_eq!(inc["new_leader"], new, "{inc}");
    assert!(
        waited < Duration::from_secs(30),
        "reported {waited:?} after the election"
    );
    eprintln!(
        "leader zk{old} killed; zk{new} elected; incident {} reported {:.1} s after the election",
        inc["id"],
        waited.as_secs_f64()
    );
    // What a detection costs is in /metrics (the detector rests in proportion to it).
    let took: f64 = get_text(port, "/metrics")
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("zklens_incident_detection_seconds "))
                .and_then(|v| v.trim().parse().ok())
        })
        .expect("zklens_incident_detection_seconds in /metrics");
    assert!(took > 0.0 && took < 10.0, "detection took {took} s");

    // Quorum lost (every server down): the service keeps following what it knows...
    for n in 1..=3u64 {
        if n != old {
            ens.harness(&["kill", &n.to_string()]);
        }
    }
    let during = count(port, "node:calc-a");
    wait_for(
        "calc-a's lines still indexed while the ensemble is down",
        30,
        || (count(port, "node:calc-a") > during).then_some(()),
    );
    // The client notices the lost connection a moment after the kills (it may still be
    // reading when the sockets close): wait for it, bounded.
    let health = wait_for("/health to show ZooKeeper disconnected", 20, || {
        get(port, "/health").filter(|h| h["zookeeper"]["state"] != "connected")
    });
    assert_ne!(health["zookeeper"]["state"], "connected", "{health}");
    // ...and when the ensemble is back, it reconnects, re-establishes its watches and picks
    // up a registration made after the outage.
    for n in 1..=3u64 {
        ens.harness(&["restart", &n.to_string()]);
    }
    ens.leader();
    let _d = service(&zk, "calc", "calc-d", &logs);
    wait_for("calc-d registered after the outage", 60, || {
        (registration_state(port, "calc-d").as_deref() == Some("up")).then_some(())
    });
    wait_for("calc-d's lines indexed", 30, || {
        (count(port, "node:calc-d") > 0).then_some(())
    });
    let health = get(port, "/health").expect("/health");
    assert_eq!(health["zookeeper"]["state"], "connected", "{health}");

    // Live detection reads only what each commit brought (after its first, full run); what it
    // found is what a full detection over the same index finds (`zklens incidents`, a second
    // process reading the committed index).
    let out = Command::new(env!("CARGO_BIN_EXE_zklens"))
        .env_remove("ZKLENS_DATA_DIR")
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["incidents", "-o", "json"])
        .output()
        .expect("run zklens incidents");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full: Value = serde_json::from_slice(&out.stdout).expect("incidents json");
    let full: Vec<String> = full
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        full.len() >= 3,
        "the failover, the quorum loss and the rejoins: {full:?}"
    );
    wait_for(
        "the live incidents to include the full detection's",
        30,
        || {
            let live: Vec<String> = get(port, "/api/incidents")?
                .as_array()?
                .iter()
                .filter_map(|li| li["incident"]["id"].as_str().map(str::to_string))
                .collect();
            full.iter().all(|id| live.contains(id)).then_some(())
        },
    );
}
