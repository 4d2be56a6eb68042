//! `zklens serve` with `[sinks.parquet]`: the service writes the event lake as it indexes.
//! Killed with SIGKILL at moments that fall inside publications, and started again, it must
//! leave every line written in exactly one published Parquet file, no staged file behind, and
//! file ranges that follow one another; a restart rewrites nothing it had published.
#![cfg(feature = "lake")]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{exe, free_port, wait_up, Serve};

fn start(data: &Path, config: &Path, log: &Path) -> Serve {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("serve log");
    Serve(
        Command::new(exe())
            .env_remove("ZKLENS_DATA_DIR")
            .env_remove("ZKLENS_SERVER")
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start zklens serve"),
    )
}

fn append(p: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .expect("open log");
    f.write_all((lines.join("\n") + "\n").as_bytes())
        .expect("append");
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// The store range a published file's name carries.
fn range(p: &Path) -> (u64, u64) {
    let name = p.file_name().expect("name").to_string_lossy().into_owned();
    let stem = name.strip_suffix(".parquet").expect(".parquet");
    let k = &stem[stem.len() - 33..];
    let (a, b) = k.split_once('-').expect("FROM-TO");
    (
        u64::from_str_radix(a, 16).expect("hex"),
        u64::from_str_radix(b, 16).expect("hex"),
    )
}

fn stop(mut srv: Serve, log: &Path) {
    let pid = srv.0.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(st.is_ok_and(|s| s.success()));
    let t0 = Instant::now();
    let code = loop {
        if let Ok(Some(s)) = srv.0.try_wait() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        code.success(),
        "serve exit status {code:?}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn kill_9_leaves_every_event_in_exactly_one_lake_file() {
    kill_9_and_look(false);
}

/// The same lake given as a `file://` URL: written through the object store code (staged in
/// the data directory, then put whole).
#[test]
fn kill_9_leaves_every_event_in_exactly_one_object() {
    kill_9_and_look(true);
}

fn kill_9_and_look(url: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let (data, lake, log) = (
        tmp.path().join("data"),
        tmp.path().join("lake"),
        tmp.path().join("serve.log"),
    );
    let port = free_port();
    let nodes = ["a", "b", "c"];
    let config = tmp.path().join("serve.toml");
    let target = if url {
        format!("file://{}", lake.display())
    } else {
        lake.display().to_string()
    };
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\ncommit_ms = 100\npoll_ms = 30\n\n[ensemble]\nname = \"lab\"\n\n[sinks.parquet]\ndir = \"{target}\"\ninterval_s = 1\nmax_rows = 700\n"
    );
    for n in nodes {
        text += &format!(
            "\n[[sources]]\nnode = \"{n}\"\nurl = \"file://{}/{n}.log\"\n",
            logs.display()
        );
    }
    std::fs::write(&config, text).expect("config");

    let mut srv = start(&data, &config, &log);
    wait_up(port);
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut next = 0usize;
    let mut kills = 0;
    for round in 0..36 {
        for n in nodes {
            let lines: Vec<String> = (0..150)
                .map(|_| {
                    next += 1;
                    let msg = format!("{n} wrote record {next:07}");
                    *expected.entry(msg.clone()).or_default() += 1;
                    // Days apart: a publication's files span dates as well as nodes.
                    format!(
                        "2026-11-{:02} 05:00:{:02},{:03} INFO app.{n}: {msg}",
                        20 + (next / 1500) % 5,
                        (next / 1000) % 60,
                        next % 1000
                    )
                })
                .collect();
            append(&logs.join(format!("{n}.log")), &lines);
        }
        std::thread::sleep(Duration::from_millis(60));
        if round % 9 == 8 {
            // Kills at different points of the one-second publication cycle.
            std::thread::sleep(Duration::from_millis(137 * (round as u64 % 7)));
            drop(srv);
            kills += 1;
            srv = start(&data, &config, &log);
            wait_up(port);
        }
    }
    let total: usize = expected.values().sum();
    let t0 = Instant::now();
    while common::http_get(port, "/api/query?q=*&count=true")
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["total"].as_u64())
        .unwrap_or(0)
        < total as u64
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not indexed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A graceful stop publishes what the last commit added.
    stop(srv, &log);
    let serve_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(kills, 4);

    // Every line in exactly one published file, under the configured ensemble.
    let events = zklens::lake::read_lake(&lake, &mut |_| true).expect("read the lake");
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        assert_eq!(&*e.ensemble, "lab");
        *got.entry(e.message.clone()).or_default() += 1;
    }
    let missing = expected.keys().filter(|k| !got.contains_key(*k)).count();
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(3).collect();
    assert!(
        missing == 0 && dup.is_empty() && events.len() == total,
        "{total} lines, {} rows in the lake: {missing} missing, duplicated e.g. {dup:?}\n{serve_log}",
        events.len()
    );
    // No staged file is left, and the ranges follow one another from the store's start.
    let published = files(&lake);
    assert!(published
        .keys()
        .all(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')));
    let mut ranges: Vec<(u64, u64)> = published.keys().map(|p| range(p)).collect();
    ranges.sort();
    ranges.dedup();
    assert_eq!(ranges[0].0, 0, "{ranges:?}");
    for w in ranges.windows(2) {
        assert_eq!(w[0].1, w[1].0, "ranges follow one another: {ranges:?}");
    }
    assert!(ranges.len() > 3, "{ranges:?}");
    // Several nodes and days: a publication is several files.
    assert!(published.len() > ranges.len(), "{}", published.len());

    // Started again and stopped: the lake is what it was, byte for byte.
    let srv = start(&data, &config, &log);
    wait_up(port);
    std::thread::sleep(Duration::from_millis(1500));
    stop(srv, &log);
    assert!(files(&lake) == published, "a restart changed the lake");
}
