//! The collector manager driven directly (no ZooKeeper, no writer): registrations in, the
//! collectors' messages out.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::config::{Security, ServeConfig};
use super::*;
use crate::discovery::LogLocation;

/// A manager whose discovered file sources must lie under `root`, and its collectors' output.
fn manager(data: &Path, roots: &[&Path]) -> (Manager, Receiver<Msg>) {
    let cfg = ServeConfig {
        poll_ms: 20,
        flush_ms: 50,
        security: Security {
            allowed_roots: roots.iter().map(|r| r.to_path_buf()).collect(),
            ..Security::default()
        },
        ..ServeConfig::default()
    };
    let registry = Registry::load(&[] as &[&Path]).expect("formats");
    let (shared, _sink) = prepare(cfg, DataDir::new(data), registry).expect("prepare");
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    (Manager::new(shared, tx), rx)
}

fn register(m: &mut Manager, urls: &[String]) {
    m.discovery(DiscoveryEvent::Registered(Registration {
        znode: "/services/calc/calc-a".into(),
        service: "calc".into(),
        instance: "calc-a".into(),
        host: None,
        logs: urls
            .iter()
            .map(|u| LogLocation {
                url: u.clone(),
                format: None,
            })
            .collect(),
        session: None,
    }));
}

/// Event messages and notices received within `wait`.
fn drain(rx: &Receiver<Msg>, wait: Duration) -> (Vec<String>, Vec<String>) {
    let (mut events, mut notices) = (Vec::new(), Vec::new());
    let end = Instant::now() + wait;
    loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(Msg::Batch { batch, .. }) => {
                events.extend(batch.events.iter().map(|e| e.message.clone()))
            }
            Ok(Msg::Notice { message, .. }) => notices.push(message),
            Ok(Msg::Sync(answer)) => {
                let _ = answer.send(Ok(()));
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    (events, notices)
}

fn log_lines(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("2026-11-25 06:00:00,{i:03} INFO app.calc: {tag} line {i}\n"))
        .collect()
}

/// Issue 15: the allowed root was checked once, at registration; a log replaced by a symlink
/// afterwards was read wherever it pointed.
#[test]
fn a_log_swapped_for_a_symlink_out_of_the_root_is_not_read() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("allowed");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.log"), log_lines("SECRET", 5)).expect("write");
    let log = root.join("calc.log");
    std::fs::write(&log, log_lines("inside", 5)).expect("write");
    let (mut m, rx) = manager(&d.path().join("data"), &[&root]);
    register(&mut m, &[format!("file://{}", log.display())]);
    let (events, _) = drain(&rx, Duration::from_millis(600));
    assert!(events.iter().any(|e| e.contains("inside")), "{events:?}");
    std::fs::rename(&log, root.join("calc.log.1")).expect("rotate");
    std::os::unix::fs::symlink(outside.join("secret.log"), &log).expect("symlink");
    let (events, notices) = drain(&rx, Duration::from_millis(1500));
    m.shutdown();
    let (more, _) = drain(&rx, Duration::from_millis(200));
    assert!(
        !events.iter().chain(&more).any(|e| e.contains("SECRET")),
        "read through the symlink: {events:?}"
    );
    assert!(
        notices.iter().any(|n| n.contains("refused")),
        "the refusal is reported: {notices:?}"
    );
}

/// Issue 15: a file registered under a directory that did not exist yet was read through that
/// directory once it appeared as a symlink out of the root.
#[test]
fn a_late_directory_symlinked_out_of_the_root_is_not_read() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("allowed");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("x.log"), log_lines("SECRET", 5)).expect("write");
    let (mut m, rx) = manager(&d.path().join("data"), &[&root]);
    register(&mut m, &[format!("file://{}/newdir/x.log", root.display())]);
    let (events, _) = drain(&rx, Duration::from_millis(200));
    assert!(events.is_empty());
    std::os::unix::fs::symlink(&outside, root.join("newdir")).expect("symlink");
    let (events, notices) = drain(&rx, Duration::from_millis(1500));
    m.shutdown();
    assert!(
        !events.iter().any(|e| e.contains("SECRET")),
        "read through the symlinked directory: {events:?}"
    );
    assert!(
        notices.iter().any(|n| n.contains("refused")),
        "the refusal is reported: {notices:?}"
    );
}

/// Issue 15: spellings of one file were separate collectors, so one registration had each line
/// indexed once per spelling (up to 64 times). One collector reads it; the others are refused
/// and reported.
#[test]
fn spellings_of_one_file_are_one_collector() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("allowed");
    std::fs::create_dir_all(root.join("c")).expect("mkdir");
    let log = root.join("b.log");
    std::fs::write(&log, log_lines("once", 20)).expect("write");
    std::os::unix::fs::symlink(&log, root.join("link.log")).expect("symlink");
    let r = root.display();
    let urls: Vec<String> = vec![
        format!("file://{r}/b.log"),
        format!("file://{r}/./b.log"),
        format!("file://{r}//b.log"),
        format!("file://{r}/c/../b.log"),
        format!("file://{r}/link.log"),
        format!("file://localhost{r}/b.log"),
    ];
    let (mut m, rx) = manager(&d.path().join("data"), &[&root]);
    register(&mut m, &urls);
    let (mut events, _) = drain(&rx, Duration::from_millis(800));
    m.shutdown();
    events.extend(drain(&rx, Duration::from_millis(200)).0);
    let mut counts = std::collections::BTreeMap::new();
    for e in &events {
        *counts.entry(e.clone()).or_insert(0usize) += 1;
    }
    assert_eq!(counts.len(), 20, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "indexed more than once: {counts:?}"
    );
    let st = m.shared.status();
    let refused = st
        .sources
        .values()
        .filter(|s| s.state.contains("the same source as"))
        .count();
    assert_eq!(refused, urls.len() - 1, "{:?}", st.sources);
    assert_eq!(st.refusals.len(), urls.len() - 1);
}

/// A global cap on discovered sources: what goes over it is refused and reported.
#[test]
fn discovered_sources_are_capped() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("allowed");
    std::fs::create_dir_all(&root).expect("mkdir");
    let cfg = ServeConfig {
        poll_ms: 20,
        security: Security {
            allowed_roots: vec![root.clone()],
            max_sources: 3,
            ..Security::default()
        },
        ..ServeConfig::default()
    };
    let registry = Registry::load(&[] as &[&Path]).expect("formats");
    let (shared, _sink) =
        prepare(cfg, DataDir::new(d.path().join("data")), registry).expect("prepare");
    let (tx, _rx) = std::sync::mpsc::sync_channel(4096);
    let mut m = Manager::new(shared, tx);
    let urls: Vec<String> = (0..5)
        .map(|i| format!("file://{}/s{i}.log", root.display()))
        .collect();
    register(&mut m, &urls);
    assert_eq!(m.running.len(), 3);
    let st = m.shared.status();
    let over: Vec<_> = st
        .sources
        .values()
        .filter(|s| s.state.contains("security.max_sources"))
        .collect();
    assert_eq!(over.len(), 2, "{:?}", st.sources);
    drop(st);
    m.shutdown();
}
