//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

/// Debian's Python, the one with `python3-kazoo` (another `python3` may be first on PATH).
pub const PYTHON: &str = "/usr/bin/python3";

/// The jars a ZooKeeper server needs to run and write its log (Debian's `zookeeper` package).
pub const SERVER_JARS: &[&str] = &["zookeeper.jar", "slf4j-log4j12.jar", "log4j-1.2.jar"];

/// Why a real ZooKeeper server (and, with `kazoo`, the Python client driving it) cannot run
/// here, if it cannot: java, `jars` under /usr/share/java, and Debian's Python.
pub fn missing_zookeeper(jars: &[&str], kazoo: bool) -> Option<String> {
    match Command::new("java").arg("-version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("no working `java` on PATH".into()),
    }
    for j in jars {
        let p = format!("/usr/share/java/{j}");
        if !Path::new(&p).exists() {
            return Some(format!("{p} is missing (apt-get install zookeeper)"));
        }
    }
    if kazoo {
        match Command::new(PYTHON).args(["-c", "import kazoo"]).output() {
            Ok(o) if o.status.success() => {}
            _ => return Some(format!("{PYTHON} cannot import kazoo (python3-kazoo)")),
        }
    } else if !Path::new(PYTHON).exists() {
        return Some(format!("{PYTHON} is missing"));
    }
    None
}

/// `zklens --data-dir DATA`, unaffected by the caller's ZKLENS_* environment.
pub fn zklens(data: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("zklens").expect("binary");
    c.env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .arg("--data-dir")
        .arg(data);
    c
}

/// The standard output of a finished command, which must have succeeded (`what` names it in
/// the failure, with its exit status and standard error).
pub fn stdout_of(out: std::process::Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One ingest of `samples/incident-1`, shared by every test of a test binary (a fresh data dir
/// per run).
pub fn sample_index() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        let out = zklens(d.path())
            .arg("ingest")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/incident-1"))
            .output()
            .expect("run ingest");
        stdout_of(out, "ingest");
        d
    })
    .path()
}

/// The `zklens` binary under test.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zklens"))
}

/// A loopback TCP port that is free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process (a `zklens serve`) killed and reaped when dropped, so a failing test leaves
/// nothing running.
pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HTTP status and body of a plain GET to a loopback service (None: no answer).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request(port, path, Some("127.0.0.1"), "")
}

/// HTTP status and body of a GET to a loopback service with extra header lines (`Name: v\r\n`
/// each) and `Host` (None: no `Host` header at all). None: no answer within 60 s.
pub fn http_request(
    port: u16,
    path: &str,
    host: Option<&str>,
    headers: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .ok()?;
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\n{host}{headers}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Copies directory `from` into `to` (created), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}

/// `zklens serve` on `port` with data dir `data`, following each (node, file) of `sources`,
/// committing every `commit_ms` and polling quiet files every `poll_ms`, its stderr appended to
/// `log`. Killed (SIGKILL) when dropped.
pub fn serve_files(
    data: &Path,
    port: u16,
    sources: &[(&str, &Path)],
    log: &Path,
    commit_ms: u64,
    poll_ms: u64,
) -> Serve {
    let mut c = Command::new(exe());
    c.env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .arg("--data-dir")
        .arg(data)
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--commit-ms", &commit_ms.to_string()])
        .args(["--poll-ms", &poll_ms.to_string()]);
    for (node, p) in sources {
        c.arg("--source")
            .arg(format!("{node}=file://{}", p.display()));
    }
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("serve log");
    c.stdout(std::process::Stdio::null()).stderr(err);
    Serve(c.spawn().expect("start zklens serve"))
}

/// Waits (30 s at most) until the service on `port` answers `/health` with 200.
pub fn wait_up(port: u16) {
    let t0 = std::time::Instant::now();
    while http_get(port, "/health").is_none_or(|(c, _)| c != 200) {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "zklens serve did not answer /health"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every event in the index of `data` as its JSON row (a fresh `zklens query` process reading
/// the data directory).
pub fn indexed_rows(data: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(exe())
        .env_remove("ZKLENS_DATA_DIR")
        .env_remove("ZKLENS_SERVER")
        .arg("--data-dir")
        .arg(data)
        .args(["query", "*", "--limit", "0", "-o", "jsonl"])
        .output()
        .expect("zklens query");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect()
}

/// Every message in the index of `data`, with how many times it is there.
pub fn indexed_messages(data: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut got = std::collections::BTreeMap::new();
    for v in indexed_rows(data) {
        *got.entry(v["message"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    got
}

/// The lake virtualenv's Python if it imports `modules` (a Python import list), else None
/// (a failure under ZKLENS_REQUIRE_ORACLE=1).
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let p = std::env::var_os("ZKLENS_LAKE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lake-venv/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(p);
    }
    skip(format!(
        "{} cannot import {modules} (.ci/run installs them)",
        p.display()
    ))
}

/// Says why a test cannot run: a failure in CI, a skip elsewhere.
pub fn skip<T>(why: String) -> Option<T> {
    assert!(
        std::env::var("ZKLENS_REQUIRE_ORACLE").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// A real ensemble run by `tests/harness/zkharness.py` in `dir` (stopped when dropped).
pub struct Ensemble {
    /// The harness's directory (`zkN/` per server).
    pub dir: PathBuf,
}

impl Ensemble {
    /// Starts `servers` servers (tickTime 500) on loopback ports from `base_port`; they stop
    /// when this test process dies, too.
    pub fn start(dir: PathBuf, servers: u32, base_port: u16) -> Ensemble {
        let out = Command::new(PYTHON)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness/zkharness.py"))
            .args(["start", "--servers", &servers.to_string(), "--tick", "500"])
            .args(["--base-port", &base_port.to_string()])
            .args(["--owner-pid", &std::process::id().to_string()])
            .arg("--dir")
            .arg(&dir)
            .output()
            .expect("start the ensemble");
        stdout_of(out, "ensemble start");
        Ensemble { dir }
    }

    /// Runs a harness command on it; its stdout.
    pub fn harness(&self, args: &[&str]) -> String {
        let out = Command::new(PYTHON)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness/zkharness.py"))
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .expect("run zkharness.py");
        let stdout = stdout_of(out, &format!("zkharness {args:?}"));
        String::from_utf8_lossy(&stdout).trim().to_string()
    }

    /// The current leader's id (waiting up to 60 s for one).
    pub fn leader(&self) -> u64 {
        self.harness(&["leader", "--timeout", "60"])
            .parse()
            .expect("leader id")
    }

    /// Server `n`'s log file.
    pub fn log(&self, n: u64) -> PathBuf {
        self.dir.join(format!("zk{n}/logs/zookeeper.log"))
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        let _ = Command::new(PYTHON)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness/zkharness.py"))
            .args(["stop-all", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

/// Polls `f` every `every` until it gives a value, for at most `secs` seconds; then fails
/// naming `what`, with `context()` (the logs that say why).
pub fn wait_until<T>(
    what: &str,
    secs: u64,
    every: std::time::Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(every);
    }
}
