//! Crash safety at scale (issue 15): `zklens serve` follows three files while they are written
//! and rotated (by rename, by copytruncate), and is killed with SIGKILL 20 times at random
//! moments — mid-commit (it commits every 100 ms), mid-merge, right after a rotation. After every
//! kill the index opens cleanly from another process; once, a torn frame is appended to the event
//! store (as a write cut short by the kill would leave it). At the end every line written is in
//! the index exactly once.
//!
//! The moments are random but reproducible: `ZKLENS_CRASH_SEED=N` replays a run (the seed in use
//! is printed).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{exe, free_port, indexed_messages, wait_up, Serve};
use zklens::devtools::corpus::Rng;

fn start(data: &Path, port: u16, sources: &[(&str, PathBuf)], log: &Path) -> Serve {
    let s: Vec<(&str, &Path)> = sources.iter().map(|(n, p)| (*n, p.as_path())).collect();
    common::serve_files(data, port, &s, log, 100, 30)
}

const KILLS: usize = 20;

fn api_total(port: u16) -> Option<usize> {
    let (code, body) = common::http_get(port, "/api/query?q=*&count=true")?;
    (code == 200)
        .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v["total"].as_u64())
        .map(|n| n as usize)
}

/// Waits until the service shows at least `n` events (None: it did not within a minute).
fn wait_for(port: u16, n: usize) -> Option<usize> {
    let t0 = Instant::now();
    loop {
        let got = api_total(port).unwrap_or(0);
        if got >= n {
            return Some(got);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the writer wrote: every message once, and how many.
#[derive(Default)]
struct Written {
    messages: Vec<String>,
}

/// Appends numbered lines to each file while `run` holds; the lock is held during each append
/// and each rotation, so a rotation never splits an append.
fn writer(
    files: Vec<(String, PathBuf)>,
    written: Arc<Mutex<Written>>,
    run: Arc<AtomicBool>,
    seed: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng(seed ^ 0x5eed);
        let mut next = vec![0usize; files.len()];
        while run.load(Ordering::SeqCst) {
            for (k, (node, path)) in files.iter().enumerate() {
                let n = 20 + rng.below(120) as usize;
                let mut w = written.lock().expect("writer lock");
                let mut buf = String::new();
                for _ in 0..n {
                    let i = next[k];
                    next[k] += 1;
                    let msg = format!("{node} wrote record {i:07} {}", "y".repeat(i % 50));
                    let (s, ms) = ((i / 1000) % 60, i % 1000);
                    buf.push_str(&format!(
                        "2026-11-25 06:{:02}:{s:02},{ms:03} INFO app.{node}: {msg}\n",
                        (i / 60_000) % 60
                    ));
                    w.messages.push(msg);
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open log");
                f.write_all(buf.as_bytes()).expect("append");
            }
            std::thread::sleep(Duration::from_millis(5 + rng.below(30)));
        }
    })
}

/// The event store's file (it starts with its magic).
fn store_file(data: &Path) -> Option<PathBuf> {
    let mut stack = vec![data.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"ZKLSTOR1")) {
                return Some(p);
            }
        }
    }
    None
}

#[test]
fn twenty_sigkills_while_files_are_written_and_rotated_lose_and_duplicate_nothing() {
    let seed = std::env::var("ZKLENS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("ZKLENS_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let data = tmp.path().join("data");
    let serve_log = tmp.path().join("serve.log");
    let files: Vec<(String, PathBuf)> = ["a", "b", "c"]
        .iter()
        .map(|n| (n.to_string(), logs.join(format!("{n}.log"))))
        .collect();
    let sources: Vec<(&str, PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let written = Arc::new(Mutex::new(Written::default()));
    let run = Arc::new(AtomicBool::new(true));
    let port = free_port();
    let mut srv = start(&data, port, &sources, &serve_log);
    wait_up(port);
    let w = writer(files.clone(), written.clone(), run.clone(), seed);
    let t0 = Instant::now();
    let (mut renames, mut truncations, mut torn) = (0, 0, false);
    for k in 0..KILLS {
        std::thread::sleep(Duration::from_millis(100 + rng.below(1100)));
        // A rotation now and then, the kill soon after it (maybe before it was noticed).
        match k % 4 {
            1 => {
                let _w = written.lock().expect("lock");
                renames += 1;
                std::fs::rename(&files[0].1, logs.join(format!("a.log.{renames}")))
                    .expect("rotate a");
            }
            3 => {
                let _w = written.lock().expect("lock");
                truncations += 1;
                let copy = logs.join(format!("b.log.{truncations}"));
                std::fs::copy(&files[1].1, &copy).expect("copy b");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&files[1].1)
                    .and_then(|f| f.set_len(0))
                    .expect("truncate b");
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        let before = written.lock().expect("lock").messages.len();
        drop(srv); // SIGKILL
                   // The index opens cleanly from another process after every kill.
        let out = Command::new(exe())
            .env_remove("ZKLENS_DATA_DIR")
            .env_remove("ZKLENS_SERVER")
            .arg("--data-dir")
            .arg(&data)
            .args(["query", "*", "-c"])
            .output()
            .expect("zklens query");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "kill {k}: the index does not open: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if k == KILLS / 2 {
            // A frame cut short: a header promising more bytes than follow.
            if let Some(p) = store_file(&data) {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .expect("open store");
                f.write_all(&[
                    0xff, 0xff, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 1, 0, 0, 0, 0x28,
                ])
                .expect("torn frame");
                torn = true;
            }
        }
        srv = start(&data, port, &sources, &serve_log);
        wait_up(port);
        // It catches up with what was written before the kill before the next rotation (files
        // rotated twice while the service is down: `rotated_twice_while_down_...` below).
        if wait_for(port, before).is_none() {
            let log = std::fs::read_to_string(&serve_log).unwrap_or_default();
            panic!("kill {k}: the service did not catch up with {before} lines in a minute\n{log}");
        }
    }
    run.store(false, Ordering::SeqCst);
    w.join().expect("writer");
    let expected: BTreeMap<String, usize> = {
        let w = written.lock().expect("lock");
        let mut m = BTreeMap::new();
        for msg in &w.messages {
            *m.entry(msg.clone()).or_insert(0) += 1;
        }
        m
    };
    let total: usize = expected.values().sum();
    let caught_up = wait_for(port, total);
    let pid = srv.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let t = Instant::now();
    while srv.0.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = indexed_messages(&data);
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let log = std::fs::read_to_string(&serve_log).unwrap_or_default();
    assert!(
        caught_up.is_some() && missing.is_empty() && dup.is_empty(),
        "seed {seed}: {total} lines written, {} indexed ({} distinct); missing e.g. {missing:?}; duplicated e.g. {dup:?}\nserve log:\n{log}",
        got.values().sum::<usize>(),
        got.len()
    );
    assert_eq!(got.values().sum::<usize>(), total);
    assert!(torn, "the torn frame was written");
    assert!(renames >= 4 && truncations >= 4);
    eprintln!(
        "seed {seed}: {total} lines, {KILLS} SIGKILLs, {renames} renames, {truncations} copytruncates, one torn store frame: all indexed once in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Regression (issue 15): a file rotated twice while `zklens serve` was down lost the middle
/// file (`a.log` → `a.log.1` → `a.log.2` as logrotate renumbers, a new `a.log` each time): only
/// the file the checkpoint named was looked for. After a SIGKILL, two rotations with lines in
/// each file, and a restart, every line is indexed exactly once; then once more with dated
/// names (`a.log-N`) and a SIGKILL while the chain of files is being read.
#[test]
fn rotated_twice_while_down_every_line_indexed_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let data = tmp.path().join("data");
    let serve_log = tmp.path().join("serve.log");
    let a = logs.join("a.log");
    let sources = [("a", a.clone())];
    let mut next = 0usize;
    let mut written: Vec<String> = Vec::new();
    let mut write = |n: usize, written: &mut Vec<String>| {
        let mut buf = String::new();
        for _ in 0..n {
            let msg = format!("a wrote record {next:07}");
            buf.push_str(&format!(
                "2026-11-25 06:00:00,{:03} INFO app.a: {msg}\n",
                next % 1000
            ));
            written.push(msg);
            next += 1;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&a)
            .expect("open log");
        f.write_all(buf.as_bytes()).expect("append");
        // Rotations seconds apart in life; here the file system's clock must tell them apart.
        std::thread::sleep(Duration::from_millis(30));
    };
    let port = free_port();
    write(100, &mut written);
    let srv = start(&data, port, &sources, &serve_log);
    wait_up(port);
    assert_eq!(wait_for(port, 100), Some(100));
    drop(srv); // SIGKILL

    // Down: the rest of the file, rotated; a second file, rotated; a third.
    write(50, &mut written);
    std::fs::rename(&a, logs.join("a.log.1")).expect("rotate");
    write(60, &mut written);
    std::fs::rename(logs.join("a.log.1"), logs.join("a.log.2")).expect("rotate");
    std::fs::rename(&a, logs.join("a.log.1")).expect("rotate");
    write(70, &mut written);
    let srv = start(&data, port, &sources, &serve_log);
    wait_up(port);
    let caught_up = wait_for(port, written.len());
    drop(srv);
    assert_exactly_once(&data, &written, caught_up.is_some(), &serve_log);

    // Dated names, and a kill while the files rotated meanwhile are being read.
    write(40, &mut written);
    std::fs::rename(&a, logs.join("a.log-20261125")).expect("rotate");
    write(20_000, &mut written);
    std::fs::rename(&a, logs.join("a.log-20261126")).expect("rotate");
    write(30, &mut written);
    let srv = start(&data, port, &sources, &serve_log);
    wait_up(port);
    std::thread::sleep(Duration::from_millis(150));
    drop(srv); // SIGKILL, maybe in the middle of the chain
    let srv = start(&data, port, &sources, &serve_log);
    wait_up(port);
    let caught_up = wait_for(port, written.len());
    drop(srv);
    assert_exactly_once(&data, &written, caught_up.is_some(), &serve_log);
}

/// Every line of `written` is indexed in `data` exactly once (and the service had caught up).
fn assert_exactly_once(data: &Path, written: &[String], caught_up: bool, serve_log: &Path) {
    let got = indexed_messages(data);
    let log = std::fs::read_to_string(serve_log).unwrap_or_default();
    let missing: Vec<_> = written
        .iter()
        .filter(|m| !got.contains_key(*m))
        .take(5)
        .collect();
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        caught_up && missing.is_empty() && dup.is_empty(),
        "{} written, {} indexed; missing e.g. {missing:?}; duplicated e.g. {dup:?}\nserve log:\n{log}",
        written.len(),
        got.values().sum::<usize>()
    );
    assert_eq!(got.values().sum::<usize>(), written.len());
}
