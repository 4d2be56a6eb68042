//! `zklens agent`'s spool while the service is unreachable: bounded on disk, reported on its
//! `/metrics`, drained in order when the service comes up. When it is full the agent stops
//! reading (the file is the buffer), and nothing is lost or sent twice. No ZooKeeper is needed:
//! the agent
//! follows a configured file (its discovery keeps retrying a connect string nobody answers).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{exe, free_port};

const TOKEN: &str = "spool-test-token";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let (code, body) = common::http_request(port, path, Some("127.0.0.1"), &auth)?;
    (code == 200).then_some(body)
}

fn metric(port: u16, name: &str) -> Option<u64> {
    get(port, "/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_for<T>(what: &str, secs: u64, log: &Path, f: impl FnMut() -> Option<T>) -> T {
    let context = || std::fs::read_to_string(log).unwrap_or_default();
    common::wait_until(what, secs, Duration::from_millis(100), context, f)
}

/// A log of `n` single-line entries that compress poorly (so the spool fills).
fn write_log(p: &Path, n: u64) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(p).expect("log"));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (s, ms) = (i / 1000, i % 1000);
        writeln!(
            f,
            "2026-12-01 10:{:02}:{:02},{ms:03} [myid:1] - INFO  [main:Spool@1] - entry {i} token {x:016x} {:016x}",
            s / 60 % 60,
            s % 60,
            x.rotate_left(29)
        )
        .expect("write");
    }
    f.flush().expect("flush");
    std::fs::metadata(p).expect("stat").len()
}

fn serve(tmp: &Path, port: u16) -> Proc {
    let log = std::fs::File::create(tmp.join("serve.log")).expect("serve log");
    Proc(
        Command::new(exe())
            .env_remove("ZKLENS_DATA_DIR")
            .env("ZKLENS_TOKEN", TOKEN)
            .arg("--data-dir")
            .arg(tmp.join("data"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--commit-ms", "300"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start zklens serve"),
    )
}

fn agent(tmp: &Path, port: u16, health: u16, file: &Path) -> Proc {
    let cfg = tmp.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "server = \"http://127.0.0.1:{port}\"\nhost = \"h1\"\nlisten = \"127.0.0.1:{health}\"\nmax_request_bytes = 65536\nspool_max_bytes = 262144\nflush_ms = 300\n\n[zookeeper]\nconnect = \"127.0.0.1:1\"\n\n[[files]]\nnode = \"zk1\"\npath = \"{}\"\n",
            file.display()
        ),
    )
    .expect("config");
    Proc(
        Command::new(exe())
            .env_remove("ZKLENS_DATA_DIR")
            .env("ZKLENS_TOKEN", TOKEN)
            .arg("--data-dir")
            .arg(tmp.join("agent"))
            .args(["agent", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.join("agent.log")).expect("agent log"))
            .spawn()
            .expect("start zklens agent"),
    )
}

/// Offsets of the events the index holds, in order.
fn indexed_offsets(data: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = common::indexed_rows(data)
        .iter()
        .map(|r| r["offset"].as_u64().unwrap_or(u64::MAX))
        .collect();
    v.sort_unstable();
    v
}

/// Offsets of the lines of a file.
fn line_offsets(p: &Path) -> Vec<u64> {
    let text = std::fs::read(p).expect("read");
    let mut out = vec![0];
    out.extend(
        text.iter()
            .enumerate()
            .filter(|(i, &b)| b == b'\n' && i + 1 < text.len())
            .map(|(i, _)| i as u64 + 1),
    );
    out
}

#[test]
fn a_full_spool_stops_reading_and_drains_in_order_when_the_service_comes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("zookeeper.log");
    let lines = 60_000;
    let size = write_log(&file, lines);
    let (port, health) = (free_port(), free_port());
    let _agent = agent(tmp.path(), port, health, &file);
    let log = tmp.path().join("agent.log");
    // The service is not there: the spool fills to its bound and stays under it; reading stops.
    wait_for("the spool full", 60, &log, || {
        let b = metric(health, "zklens_agent_spool_bytes")?;
        (b + 70_000 > 262_144).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let spooled = metric(health, "zklens_agent_spool_bytes").expect("metric");
    assert!(spooled <= 262_144, "the bound holds: {spooled}");
    assert_eq!(metric(health, "zklens_agent_server_up"), Some(0));
    assert!(metric(health, "zklens_agent_send_failures_total").is_some_and(|n| n > 0));
    let read = metric(health, "zklens_agent_lines_total").expect("metric");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        metric(health, "zklens_agent_lines_total"),
        Some(read),
        "reading paused while the spool is full"
    );
    assert!(read < lines, "{read} lines read of {lines}");
    // The service comes up: the spool drains, in order, and the rest of the file follows.
    let serve = serve(tmp.path(), port);
    wait_for("everything shipped", 120, &log, || {
        (metric(health, "zklens_agent_spool_requests")? == 0
            && metric(health, "zklens_agent_lines_total")? == lines)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(800));
    drop(serve);
    assert_eq!(metric(health, "zklens_agent_dropped_bytes_total"), Some(0));
    let got = indexed_offsets(&tmp.path().join("data"));
    eprintln!(
        "{read} of {lines} lines read while the service was down ({spooled} bytes spooled); {} lines indexed",
        got.len()
    );
    assert_eq!(got.len() as u64, lines, "every line once");
    assert!(
        got == line_offsets(&file),
        "every line once, none twice ({size} bytes)"
    );
}
