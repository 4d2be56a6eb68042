//! Ingest isolates damage (issue 15): a damaged file is reported with its byte offset and fails
//! alone; everything read before the damage and every other file is indexed. Crafted files sit
//! beside real ones copied from `samples/` (which are never modified).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod common;

fn zk(data: &Path) -> Command {
    let mut c = Command::cargo_bin("zklens").expect("binary");
    c.env_remove("ZKLENS_DATA_DIR").arg("--data-dir").arg(data);
    c
}

/// The three servers of `samples/incident-2` (server logs, txn logs, snapshots), copied.
fn servers(root: &Path) -> PathBuf {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-2");
    for s in ["zk1", "zk2", "zk3"] {
        common::copy_dir(&samples.join(s), &root.join(s));
    }
    root.to_path_buf()
}

fn count(data: &Path, q: &str) -> u64 {
    let out = zk(data).args(["query", q, "-c"]).output().expect("run");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("count of {q}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn damaged_gzip_txn_log_and_a_stray_nul_lose_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The reference: the same files undamaged.
    let clean = servers(&tmp.path().join("clean"));
    let clean_data = tmp.path().join("clean-data");
    zk(&clean_data).arg("ingest").arg(&clean).assert().success();
    let txns = count(&clean_data, "kind:txn.*");
    let zk1_log = count(&clean_data, "node:zk1 -kind:txn.* -kind:snapshot.*");
    assert!(txns > 50 && zk1_log > 50, "{txns} {zk1_log}");

    let damaged = servers(&tmp.path().join("damaged"));
    // zk3's second log without its preallocated zeros (its records run to the end of the gzip
    // member, so the reader meets what follows), then garbage after the member.
    let log = damaged.join("zk3/data/version-2/log.200000001.gz");
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&log).expect("open"))
        .read_to_end(&mut plain)
        .expect("gunzip");
    while plain.last() == Some(&0) {
        plain.pop();
    }
    assert_eq!(plain.last(), Some(&0x42), "ends with an end-of-record byte");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain).expect("gzip");
    let mut bytes = enc.finish().expect("gzip");
    let gz_len = bytes.len();
    bytes.extend_from_slice(b"garbage appended by a broken copy\n");
    std::fs::write(&log, &bytes).expect("write");
    // A NUL byte inside zk1's first line (within the first 8 KiB).
    let text = damaged.join("zk1/logs/zookeeper.log");
    let mut t = std::fs::read(&text).expect("read");
    let at = t.iter().position(|&b| b == b'\n').expect("a line") - 3;
    t[at] = 0;
    std::fs::write(&text, &t).expect("write");

    let data = tmp.path().join("data");
    let out = zk(&data).arg("ingest").arg(&damaged).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a failed file exits 2: {err}");
    let line = err
        .lines()
        .find(|l| l.contains("log.200000001.gz: at byte offset"))
        .unwrap_or_else(|| panic!("the damaged file is named with its offset: {err}"));
    assert!(line.contains("gzip stream damaged"), "{line}");
    assert!(
        line.contains(&format!(
            "offset {} of the decompressed stream",
            plain.len()
        )),
        "{line}"
    );
    // The compressed position is past the good member.
    let read: usize = line
        .split("had read ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("compressed offset in {line}"));
    assert!(
        read >= gz_len && read <= bytes.len(),
        "{read} {gz_len} {line}"
    );
    // The NUL is reported, and the file is read as text.
    assert!(
        err.contains(&format!(
            "zookeeper.log: at byte offset {at}: NUL byte in text"
        )),
        "{err}"
    );
    assert!(!err.contains("binary data"), "{err}");
    // Nothing else is lost: every transaction (the damaged log's records before the garbage
    // too) and every event of the text file with the NUL.
    assert_eq!(count(&data, "kind:txn.*"), txns);
    assert_eq!(
        count(&data, "node:zk1 -kind:txn.* -kind:snapshot.*"),
        zk1_log
    );
}

#[test]
fn binary_files_are_skipped_with_why_and_text_is_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("logs");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-2/zk1/logs");
    common::copy_dir(&samples, &root.join("zk1"));
    let w = |name: &str, b: &[u8]| {
        let p = root.join("junk").join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, b).expect("write");
    };
    // Mostly NUL (a sparse file), UTF-16, and random control bytes: binary, each with why.
    w("zeros.log", &[0u8; 4096]);
    let mut u16 = vec![0xff, 0xfe];
    for c in "2026-11-24 22:02:29,123 INFO hello\n".encode_utf16() {
        u16.extend_from_slice(&c.to_le_bytes());
    }
    w("utf16.log", &u16);
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    w("noise.log", &noise);
    let out = zk(&tmp.path().join("data"))
        .arg("ingest")
        .arg(&root)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zeros.log: at byte offset 0: binary data (100% of its first bytes are NUL)"),
        "{err}"
    );
    assert!(
        err.contains("utf16.log: at byte offset 0: binary data (UTF-16 text"),
        "{err}"
    );
    assert!(err.contains("noise.log: at byte offset"), "{err}");
    assert!(err.contains("control characters or invalid UTF-8"), "{err}");
    // The real log beside them is indexed.
    assert!(count(&tmp.path().join("data"), "node:zk1") > 50);
}

#[test]
fn years_9999_and_1600_are_untimed_lines_and_query_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("logs/zk1");
    std::fs::create_dir_all(&root).expect("mkdir");
    let line = |date: &str, msg: &str| {
        format!("{date} 22:02:29,123 [myid:1] - INFO  [main:QuorumPeer@1] - {msg}\n")
    };
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&line("2026-11-24", &format!("ordinary line {i}")));
    }
    text.push_str(&line("9999-11-24", "far future line"));
    text.push_str(&line("1600-11-24", "far past line"));
    std::fs::write(root.join("zookeeper.log"), text).expect("write");
    let data = tmp.path().join("data");
    zk(&data)
        .arg("ingest")
        .arg(tmp.path().join("logs"))
        .assert()
        .success();
    for q in ["\"far future line\"", "\"far past line\""] {
        let out = zk(&data)
            .args(["query", q, "-o", "jsonl"])
            .output()
            .expect("run");
        let rows = String::from_utf8_lossy(&out.stdout).to_string();
        let row: serde_json::Value =
            serde_json::from_str(rows.lines().next().unwrap_or_else(|| panic!("{q}: no row")))
                .expect("json");
        // No time at all (not 1816, not 2262): an untimed line like any other.
        assert!(row["ts"].is_null(), "{q}: {row}");
    }
    assert_eq!(count(&data, "\"ordinary line\""), 40);
    for since in ["9999-01-01", "1600-01-01T00:00:00Z"] {
        let out = zk(&data)
            .args(["query", "node:zk1", "--since", since])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{since}: {err}");
        assert!(
            err.contains("outside the times zklens can hold"),
            "{since}: {err}"
        );
    }
}

#[test]
fn txnlog_dump_max_record_len_flag() {
    // A 3 MiB setData between two small records: skipped (with a notice) under the default
    // limit, read with --max-record-len.
    let record = |zxid: i64, ty: i32, body: &[u8]| {
        let mut p = Vec::new();
        p.extend_from_slice(&0x100i64.to_be_bytes());
        p.extend_from_slice(&1i32.to_be_bytes());
        p.extend_from_slice(&zxid.to_be_bytes());
        p.extend_from_slice(&1_795_573_566_256i64.to_be_bytes());
        p.extend_from_slice(&ty.to_be_bytes());
        p.extend_from_slice(body);
        let mut f = u64::from(adler32(&p)).to_be_bytes().to_vec();
        f.extend_from_slice(&(p.len() as i32).to_be_bytes());
        f.extend_from_slice(&p);
        f.push(0x42);
        f
    };
    let mut big = Vec::new();
    big.extend_from_slice(&4i32.to_be_bytes());
    big.extend_from_slice(b"/big");
    big.extend_from_slice(&(3i32 << 20).to_be_bytes());
    big.resize(big.len() + (3 << 20), b'x');
    big.extend_from_slice(&1i32.to_be_bytes());
    let mut log = b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0".to_vec();
    log.extend(record(1, -10, &4000i32.to_be_bytes()));
    log.extend(record(2, 5, &big));
    log.extend(record(3, -10, &4000i32.to_be_bytes()));
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("log.1");
    std::fs::write(&path, &log).expect("write");
    let data = tmp.path().join("data");
    let out = zk(&data)
        .args(["txnlog", "dump", "-o", "jsonl"])
        .arg(&path)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "{err}"
    );
    assert!(err.contains("over the limit of 2097152 bytes"), "{err}");
    let out = zk(&data)
        .args([
            "txnlog",
            "dump",
            "-o",
            "jsonl",
            "--max-record-len",
            "4194304",
        ])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adler-32 (the txn log's record checksum).
fn adler32(b: &[u8]) -> u32 {
    let (mut a, mut s) = (1u32, 0u32);
    for &x in b {
        a = (a + u32::from(x)) % 65_521;
        s = (s + a) % 65_521;
    }
    (s << 16) | a
}

/// A snapshot whose session table holds `sessions` sessions (from 0x100000000000001), each
/// owning one ephemeral `/e/N`, sealed.
fn snapshot_with_sessions(sessions: usize) -> Vec<u8> {
    let mut v = b"ZKSN\0\0\0\x02".to_vec();
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v.extend_from_slice(&(sessions as i32).to_be_bytes());
    for i in 0..sessions {
        v.extend_from_slice(&(0x100_0000_0000_0001i64 + i as i64).to_be_bytes());
        v.extend_from_slice(&4000i32.to_be_bytes());
    }
    v.extend_from_slice(&0i32.to_be_bytes()); // no ACL cache entries
    let mut node = |path: &str, owner: i64, zxid: i64| {
        v.extend_from_slice(&(path.len() as i32).to_be_bytes());
        v.extend_from_slice(path.as_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes()); // no data
        v.extend_from_slice(&(-1i64).to_be_bytes()); // ACL index
        for x in [zxid, zxid, 1_795_573_566_256, 1_795_573_566_256] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for x in [0i32, 0, 0] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&owner.to_be_bytes());
        v.extend_from_slice(&zxid.to_be_bytes());
    };
    node("", 0, 0);
    node("/e", 0, 1);
    for i in 0..sessions {
        node(
            &format!("/e/{i}"),
            0x100_0000_0000_0001 + i as i64,
            2 + i as i64,
        );
    }
    v.extend_from_slice(&1i32.to_be_bytes());
    v.push(b'/');
    let seal = u64::from(adler32(&v));
    v.extend_from_slice(&seal.to_be_bytes());
    v.extend_from_slice(&1i32.to_be_bytes());
    v.push(b'/');
    v
}

/// Regression (issue 15): a snapshot's session table was held whole, however many sessions
/// it held. `--max-snapshot-sessions` (default 1,000,000) bounds it, in `snapshot dump` and
/// `ingest`: the sessions over it are skipped and reported with the file and the offset of the
/// first one skipped, and the nodes are still read (the ephemerals of the sessions held).
#[test]
fn snapshot_sessions_over_the_limit_are_skipped_and_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("zk1/data/version-2");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let snap = dir.join("snapshot.1d");
    std::fs::write(&snap, snapshot_with_sessions(50)).expect("write");
    let data = tmp.path().join("data");
    // 16 bytes of header, the count, 10 sessions of 12 bytes.
    let notice = format!(
        "{}: at byte offset 140: 40 of 50 sessions in the session table are over the limit of 10",
        snap.display()
    );

    let out = zk(&data)
        .args(["snapshot", "dump", "--max-snapshot-sessions", "10"])
        .arg(&snap)
        .output()
        .expect("run");
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&notice), "{err}");
    assert!(
        stdout.contains("... and 40 more sessions over the limit of 10 (not listed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Seal: checksum") && stdout.contains(" ok"),
        "{stdout}"
    );

    let out = zk(&data)
        .args(["ingest", "--max-snapshot-sessions", "10"])
        .arg(tmp.path().join("zk1"))
        .output()
        .expect("run");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains(
            "at byte offset 140: 40 of 50 sessions in the session table are over the limit of 10"
        ),
        "{all}"
    );
    assert_eq!(count(&data, "kind:snapshot.session"), 10);
    // The ephemerals of the sessions held are theirs.
    assert_eq!(
        count(&data, "kind:snapshot.session session:0x10000000000000a"),
        1
    );
    let out = zk(&data)
        .args(["query", "-o", "jsonl", "session:0x10000000000000a"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/e/9"));
    assert_eq!(count(&data, "session:0x10000000000000b"), 0);

    // Under the default limit, all of them.
    let data = tmp.path().join("data-all");
    zk(&data)
        .arg("ingest")
        .arg(tmp.path().join("zk1"))
        .assert()
        .success();
    assert_eq!(count(&data, "kind:snapshot.session"), 50);
}
