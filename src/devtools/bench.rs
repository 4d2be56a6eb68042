//! `zklens bench`: speed and memory figures, each beside a baseline measured in the same run on
//! the same files (ripgrep for scanning and lookups). Every step runs as a child process so its
//! wall time and peak RSS (from `wait4`) are its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::devtools::corpus::{self, CorpusSpec, Manifest};
use crate::error::{Error, Result};

/// One measured command.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Run {
    /// Wall time, seconds.
    pub secs: f64,
    /// Peak resident set size, bytes.
    pub max_rss: u64,
    /// CPU time (user + system), seconds.
    #[serde(default)]
    pub cpu_secs: f64,
    /// Exit code.
    pub code: i32,
    /// Standard output (trimmed to 4 KiB).
    #[serde(default)]
    pub stdout: String,
    /// Peak anonymous resident memory (`RssAnon`, sampled every 20 ms), bytes.
    #[serde(default)]
    pub max_rss_anon: u64,
    /// Peak file-backed resident memory (`RssFile`: mapped index segments, binary), bytes.
    #[serde(default)]
    pub max_rss_file: u64,
}

/// Runs `program args` through `exe measure --` so that the measured process is forked from a
/// small process: Linux's `ru_maxrss` of a child includes the resident size of the process it was
/// forked from, which would charge every step with the benchmark driver's own memory.
pub fn measure_isolated(exe: &Path, program: &Path, args: &[String]) -> Result<Run> {
    measure_isolated_on(exe, program, args, None)
}

/// [`measure_isolated`], with the measured process (and every thread it starts) confined to
/// the CPU `cpu` when given: "one core" means one core, not one indexing thread (a single
/// indexing thread still runs beside the reader, the store compression and the merges).
pub fn measure_isolated_on(
    exe: &Path,
    program: &Path,
    args: &[String],
    cpu: Option<usize>,
) -> Result<Run> {
    let mut cmd = Command::new(exe);
    if let Some(cpu) = cpu {
        use std::os::unix::process::CommandExt;
        // SAFETY: sched_setaffinity is async-signal-safe and the set lives on this stack; the
        // closure runs in the forked child before exec and touches nothing else.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd
        .arg("measure")
        .arg("--")
        .arg(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::io(exe, e))?;
    serde_json::from_slice(&out.stdout).map_err(|e| Error::BadInput {
        path: program.to_path_buf(),
        offset: 0,
        reason: format!("measure helper said something unreadable: {e}"),
    })
}

/// Runs a command to completion, measuring wall time and peak RSS.
pub fn measure(cmd: &mut Command) -> Result<Run> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("{cmd:?}"), e))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout;
    // Drain stdout on a thread so the child never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = stdout.as_mut() {
            let mut buf = [0u8; 65536];
            loop {
                match std::io::Read::read(o, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.len() < 4096 {
                            s.extend_from_slice(&buf[..n.min(4096 - s.len())]);
                        }
                    }
                }
            }
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    // Anonymous and file-backed memory apart, as /proc samples them (wait4 gives their peak
    // sum only).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            let (mut anon, mut file) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let kb = |key: &str| {
                        text.lines()
                            .find_map(|l| l.strip_prefix(key))
                            .and_then(|v| {
                                v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                            })
                            .unwrap_or(0)
                            * 1024
                    };
                    anon = anon.max(kb("RssAnon:"));
                    file = file.max(kb("RssFile:"));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (anon, file)
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call with valid pointers to locals; `pid` is our own child, which std's
    // `Child` is not going to wait for (we dropped its handles above).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let secs = start.elapsed().as_secs_f64();
    if r < 0 {
        return Err(Error::io(
            format!("{cmd:?}"),
            std::io::Error::last_os_error(),
        ));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (max_rss_anon, max_rss_file) = sampler.join().unwrap_or_default();
    let stdout = reader.join().unwrap_or_default();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Run {
        secs,
        max_rss: ru.ru_maxrss.max(0) as u64 * 1024,
        cpu_secs: tv(ru.ru_utime) + tv(ru.ru_stime),
        code,
        stdout,
        max_rss_anon,
        max_rss_file,
    })
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// zklens's figure.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The baseline's figure in the same unit, if any.
    pub baseline: Option<f64>,
    /// What the baseline is.
    pub baseline_name: Option<String>,
    /// zklens / baseline for rates, baseline / zklens for times (higher is better), if any.
    pub ratio: Option<f64>,
    /// The target from the issue, if any, in the same sense as `ratio` or `value`.
    pub target: Option<String>,
    /// Peak RSS of the zklens process, bytes.
    pub max_rss: u64,
    /// Peak RSS of the baseline process, bytes.
    pub baseline_max_rss: Option<u64>,
}

impl Figure {
    /// What zklens keeps on disk (`bytes`) beside the raw corpus it came from (`raw_mb`).
    fn size_of_corpus(name: &str, bytes: u64, raw_mb: f64) -> Figure {
        Figure {
            name: name.into(),
            value: bytes as f64 / 1e6,
            unit: "MB".into(),
            baseline: Some(raw_mb),
            baseline_name: Some("raw corpus".into()),
            ratio: None,
            target: None,
            max_rss: 0,
            baseline_max_rss: None,
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Machine description.
    pub machine: String,
    /// Corpus size in bytes.
    pub corpus_bytes: u64,
    /// Corpus files.
    pub corpus_files: usize,
    /// Every figure.
    pub figures: Vec<Figure>,
}

/// Options.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Working directory (corpus and indexes).
    pub dir: PathBuf,
    /// Corpus size.
    pub bytes: u64,
    /// The zklens binary to measure.
    pub exe: PathBuf,
    /// Repetitions of each query (the median is reported).
    pub reps: usize,
    /// A large real transaction log to decode (generated with `benches/gen-txnlog.py` when
    /// absent and the tools for it are installed).
    pub txnlog: Option<PathBuf>,
    /// Sizes of the mixed-profile corpora whose ingest's peak memory is compared (issue 16:
    /// flat in corpus size); empty: that step is skipped.
    pub memory_sizes: Vec<u64>,
}

fn median(mut v: Vec<Run>) -> Run {
    v.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    v.swap_remove(v.len() / 2)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Describes the machine (cores, model name).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} cores, {model}", cores())
}

fn corpus_ready(dir: &Path, bytes: u64, profile: corpus::Profile) -> Option<Manifest> {
    let text = std::fs::read_to_string(corpus::manifest_path(dir)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let have = v["bytes"].as_u64()?;
    if v["generator"].as_u64() != Some(u64::from(corpus::GENERATOR))
        || v["profile"].as_str().unwrap_or("classic") != profile.name()
        || have < bytes
        || have > bytes + bytes / 10 + (1 << 20)
    {
        return None;
    }
    serde_json::from_value::<ManifestIn>(v)
        .ok()
        .map(|m| Manifest {
            files: m.files,
            lines: m.lines,
            entries: m.entries,
            bytes: m.bytes,
            failovers: Vec::new(),
            probe_session: m.probe_session,
            probe_zxid: m.probe_zxid,
            generator: corpus::GENERATOR,
            profile: m.profile,
            sessions: m.sessions,
        })
}

/// The corpus in `dir` (`bytes`, `profile`, one failover every `failover_every_s`, `seed`):
/// reused while it matches, generated again otherwise (5 servers, 6 services).
fn corpus_at(
    dir: &Path,
    bytes: u64,
    seed: u64,
    failover_every_s: u64,
    profile: corpus::Profile,
    what: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Manifest> {
    if let Some(m) = corpus_ready(dir, bytes, profile) {
        log(&format!("reusing the {what} corpus in {}", dir.display()));
        return Ok(m);
    }
    log(&format!("generating a {what} corpus"));
    let _ = std::fs::remove_dir_all(dir);
    corpus::generate(&CorpusSpec {
        out: dir.to_path_buf(),
        bytes,
        servers: 5,
        services: 6,
        seed,
        start: 1_795_478_400_000_000_000,
        failover_every_s,
        profile,
    })
}

#[derive(serde::Deserialize)]
struct ManifestIn {
    files: Vec<(String, u64)>,
    lines: u64,
    entries: u64,
    bytes: u64,
    probe_session: String,
    probe_zxid: String,
    #[serde(default)]
    profile: corpus::Profile,
    #[serde(default)]
    sessions: u64,
}

/// Peak memory of `ingest` (all cores) over mixed corpora of each of `spec.memory_sizes`: the
/// total as `wait4` reports it (file-backed pages included), anonymous and file-backed apart,
/// and the growth from the smallest to the largest, which must stay flat.
fn memory_by_size(
    spec: &BenchSpec,
    figures: &mut Vec<Figure>,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut peaks: Vec<(u64, u64)> = Vec::new();
    let mut lives: Vec<(u64, Live)> = Vec::new();
    for &bytes in &spec.memory_sizes {
        let label = format!("{} MB", bytes / 1_000_000);
        let dir = spec
            .dir
            .join(format!("corpus-mixed-{}MB", bytes / 1_000_000));
        let m = corpus_at(
            &dir,
            bytes,
            3,
            300,
            corpus::Profile::Mixed,
            &format!("{label} mixed"),
            log,
        )?;
        let data = spec.dir.join("index-mixed");
        let _ = std::fs::remove_dir_all(&data);
        log(&format!("ingest, mixed corpus of {label}"));
        let args: Vec<String> = [
            "--data-dir",
            &data.to_string_lossy(),
            "ingest",
            "-q",
            &dir.to_string_lossy(),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let r = measure_isolated(&spec.exe, &spec.exe, &args)?;
        ingested(&r, &data)?;
        let live = live_detection(&data, log)?;
        let _ = std::fs::remove_dir_all(&data);
        let mb = m.bytes as f64 / 1e6;
        let mem = |name: String, v: u64, target: Option<&str>| Figure {
            name,
            value: v as f64 / 1e6,
            unit: "MB".into(),
            baseline: None,
            baseline_name: None,
            ratio: None,
            target: target.map(str::to_string),
            max_rss: r.max_rss,
            baseline_max_rss: None,
        };
        figures.push(mem(
            format!(
                "ingest peak RSS, mixed {label} ({} sessions, {} files)",
                m.sessions,
                m.files.len()
            ),
            r.max_rss,
            Some("<= 512 MB, flat in size"),
        ));
        figures.push(mem(
            format!("  anonymous, mixed {label}"),
            r.max_rss_anon,
            None,
        ));
        figures.push(mem(
            format!("  file-backed, mixed {label}"),
            r.max_rss_file,
            None,
        ));
        if r.cpu_secs > 0.0 {
            figures.push(Figure {
                name: format!("ingest per CPU-second, mixed {label}"),
                value: mb / r.cpu_secs,
                unit: "MB/s".into(),
                baseline: None,
                baseline_name: None,
                ratio: None,
                target: Some(">= 40 MB/s".into()),
                max_rss: r.max_rss,
                baseline_max_rss: None,
            });
        }
        if let Some(l) = live {
            figures.push(Figure {
                name: format!(
                    "live detection, last minute of mixed {label} ({} events read)",
                    l.events
                ),
                value: l.incremental_ms,
                unit: "ms".into(),
                baseline: Some(l.full_ms),
                baseline_name: Some("full detection".into()),
                ratio: Some(l.full_ms / l.incremental_ms.max(1e-3)),
                target: Some("flat in index size".into()),
                max_rss: 0,
                baseline_max_rss: None,
            });
            lives.push((bytes, l));
        }
        peaks.push((bytes, r.max_rss));
    }
    if let (Some(first), Some(last)) = (lives.first(), lives.last()) {
        if lives.len() > 1 {
            figures.push(Figure {
                name: format!(
                    "live detection growth, mixed {} MB / {} MB (events read: {} / {})",
                    last.0 / 1_000_000,
                    first.0 / 1_000_000,
                    last.1.events,
                    first.1.events
                ),
                value: last.1.incremental_ms / first.1.incremental_ms.max(1e-3),
                unit: "x".into(),
                baseline: None,
                baseline_name: None,
                ratio: None,
                target: Some("flat (full detection grows with the index)".into()),
                max_rss: 0,
                baseline_max_rss: None,
            });
        }
    }
    if let (Some(first), Some(last)) = (peaks.first(), peaks.last()) {
        if peaks.len() > 1 && first.1 > 0 {
            figures.push(Figure {
                name: format!(
                    "peak RSS growth, mixed {} MB / {} MB",
                    last.0 / 1_000_000,
                    first.0 / 1_000_000
                ),
                value: last.1 as f64 / first.1 as f64,
                unit: "x".into(),
                baseline: None,
                baseline_name: None,
                ratio: None,
                target: Some("<= 1.1 (flat)".into()),
                max_rss: last.1,
                baseline_max_rss: None,
            });
        }
    }
    Ok(())
}

/// What the service's live detection costs on an index.
struct Live {
    /// One detection of what the last minute of log time may have changed (median of 5).
    incremental_ms: f64,
    /// The events it read.
    events: usize,
    /// One detection over the whole index (the service's first).
    full_ms: f64,
}

/// Times the live detector's steps on the index in `data`, in this process: a full detection,
/// then detections as if the last minute of log time had just been committed. None for an
/// index without timed events.
fn live_detection(data: &Path, log: &mut dyn FnMut(&str)) -> Result<Option<Live>> {
    let idx = crate::index::IndexHandle::open(&crate::index::DataDir::new(data))?;
    let Some(last) = idx.last_time()? else {
        return Ok(None);
    };
    let t = Instant::now();
    let all = crate::app::incidents(&idx, &[])?;
    let full_ms = t.elapsed().as_secs_f64() * 1000.0;
    let from = last.saturating_sub(60_000_000_000);
    let mut times = Vec::new();
    let mut events = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = crate::app::incidents_since(&idx, &[], from)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        events = r.events;
    }
    times.sort_by(f64::total_cmp);
    log(&format!(
        "  live detection: {:.1} ms, {events} events (full: {full_ms:.0} ms, {} incidents)",
        times[2],
        all.len()
    ));
    Ok(Some(Live {
        incremental_ms: times[2],
        events,
        full_ms,
    }))
}

/// Runs every benchmark; `log` receives progress lines.
pub fn run(spec: &BenchSpec, log: &mut dyn FnMut(&str)) -> Result<Report> {
    let corpus_dir = spec.dir.join("corpus");
    let m = corpus_at(
        &corpus_dir,
        spec.bytes,
        1,
        600,
        corpus::Profile::Classic,
        &format!("{} MB", spec.bytes / 1_000_000),
        log,
    )?;
    let mb = m.bytes as f64 / 1e6;
    let zk = |args: &[&str]| -> Result<Run> {
        let a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
        measure_isolated(&spec.exe, &spec.exe, &a)
    };
    let rg =
        |args: Vec<String>| -> Result<Run> { measure_isolated(&spec.exe, Path::new("rg"), &args) };
    let rg_ok = Command::new("rg")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut figures = Vec::new();
    let cdir = corpus_dir.to_string_lossy().into_owned();

    // ---- parse + classify, one core -----------------------------------------------------
    log("parse + classify (1 core)");
    let parse = zk(&["parse", "--stats", &cdir])?;
    let keywords = [
        "LOOKING",
        "LEADING",
        "FOLLOWING",
        "LEADER ELECTION TOOK",
        "Peer state changed",
        "Expiring session",
        "Notification:",
        "Session establishment complete",
        "Client session timed out",
        "Closing session",
        "Sending DIFF",
        "Getting a diff",
        "Exception when following",
    ];
    let rg_scan = if rg_ok {
        let mut a: Vec<String> = ["-j1", "-c", "--no-ignore", "--hidden", "-F"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        for k in keywords {
            a.push("-e".into());
            a.push(k.into());
        }
        a.push(cdir.clone());
        Some(rg(a)?)
    } else {
        None
    };
    figures.push(Figure {
        name: "parse + classify, 1 core".into(),
        value: mb / parse.secs,
        unit: "MB/s".into(),
        baseline: rg_scan.as_ref().map(|r| mb / r.secs),
        baseline_name: rg_scan
            .as_ref()
            .map(|_| format!("rg -j1 -F, {} keywords", keywords.len())),
        ratio: rg_scan.as_ref().map(|r| r.secs / parse.secs),
        target: Some(">= 250 MB/s".into()),
        max_rss: parse.max_rss,
        baseline_max_rss: rg_scan.as_ref().map(|r| r.max_rss),
    });
    figures.push(Figure {
        name: "parse + classify, 1 core".into(),
        value: m.lines as f64 / parse.secs,
        unit: "lines/s".into(),
        baseline: None,
        baseline_name: None,
        ratio: None,
        target: None,
        max_rss: parse.max_rss,
        baseline_max_rss: None,
    });

    // ---- ingest -----------------------------------------------------------------------------
    let d1 = spec.dir.join("index-1");
    let dn = spec.dir.join("index-n");
    let mut one_core_secs = None;
    for (d, pinned, label) in [(&d1, Some(0), "1 core"), (&dn, None, "all cores")] {
        let _ = std::fs::remove_dir_all(d);
        log(&format!("ingest ({label})"));
        let a: Vec<String> = ["--data-dir", &d.to_string_lossy(), "ingest", "-q", &cdir]
            .iter()
            .map(|x| x.to_string())
            .collect();
        let r = measure_isolated_on(&spec.exe, &spec.exe, &a, pinned)?;
        ingested(&r, d)?;
        let n = if pinned.is_some() {
            1.0
        } else {
            cores() as f64
        };
        figures.push(Figure {
            name: format!("ingest (parse + index + commit), {label}"),
            value: mb / r.secs,
            unit: "MB/s".into(),
            baseline: None,
            baseline_name: None,
            ratio: None,
            target: Some(format!(
                ">= {:.0} MB/s ({} x 25 MB/s per core)",
                25.0 * n,
                n
            )),
            max_rss: r.max_rss,
            baseline_max_rss: None,
        });
        if pinned.is_some() {
            one_core_secs = Some(r.secs);
        } else if let Some(one) = one_core_secs {
            figures.push(Figure {
                name: format!("ingest scaling, {} cores / 1 core (wall time)", cores()),
                value: one / r.secs,
                unit: "x".into(),
                baseline: None,
                baseline_name: None,
                ratio: None,
                target: Some(">= 1.8 x".into()),
                max_rss: 0,
                baseline_max_rss: None,
            });
        }
        if pinned.is_none() && r.cpu_secs > 0.0 {
            // The per-core figure that does not depend on how busy the cores were kept: bytes
            // ingested per second of CPU time, all threads together.
            figures.push(Figure {
                name: "ingest per CPU-second (all cores' CPU time)".into(),
                value: mb / r.cpu_secs,
                unit: "MB/s".into(),
                baseline: None,
                baseline_name: None,
                ratio: None,
                target: Some(">= 25 MB/s per core".into()),
                max_rss: r.max_rss,
                baseline_max_rss: None,
            });
        }
    }
    let idx_bytes = dir_size(&dn);
    figures.push(Figure::size_of_corpus(
        "index + event store size",
        idx_bytes,
        mb,
    ));

    // ---- export into the event lake --------------------------------------------------------
    // Beside reading the same events out of the store as JSON lines, which an export does
    // too: the ratio is what building Arrow batches and encoding Parquet add.
    if cfg!(feature = "lake") {
        let lake = spec.dir.join("lake");
        let _ = std::fs::remove_dir_all(&lake);
        let (dns, lakes) = (
            dn.to_string_lossy().into_owned(),
            lake.to_string_lossy().into_owned(),
        );
        log("export to Parquet");
        let ex = zk(&["--data-dir", &dns, "export", "--out", &lakes])?;
        log("every event read out as JSON lines (the export's baseline)");
        let out = zk(&[
            "--data-dir",
            &dns,
            "query",
            "*",
            "--limit",
            "0",
            "-o",
            "jsonl",
        ])?;
        for (r, what) in [(&ex, "export"), (&out, "query '*'")] {
            if r.code != 0 {
                return Err(Error::BadInput {
                    path: dn.clone(),
                    offset: 0,
                    reason: format!("{what} exited {}", r.code),
                });
            }
        }
        figures.push(Figure {
            name: "export to Parquet (every event)".into(),
            value: mb / ex.secs,
            unit: "MB/s".into(),
            baseline: Some(mb / out.secs),
            baseline_name: Some("query '*' -o jsonl (every event read out)".into()),
            ratio: Some(out.secs / ex.secs),
            target: None,
            max_rss: ex.max_rss,
            baseline_max_rss: Some(out.max_rss),
        });
        figures.push(Figure::size_of_corpus(
            "event lake size (Parquet, ZSTD)",
            dir_size(&lake),
            mb,
        ));
        let _ = std::fs::remove_dir_all(&lake);
    }

    // ---- lookups ------------------------------------------------------------------------
    // Each asked three ways: a `zklens` process (start, open the index, answer, exit), the
    // running service over HTTP (index held open), and rg over the raw files. rg is told to
    // match whole words (`-w`): a zxid is a prefix of others (0x10000004d of 0x10000004da).
    let dns = dn.to_string_lossy().into_owned();
    let cli = |cmd: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["--data-dir".into(), dns.clone()];
        a.extend(cmd.iter().map(|x| x.to_string()));
        a.extend(["--limit", "0", "-o", "jsonl"].map(String::from));
        a
    };
    let (since, until) = ("2026-11-24T00:00:00Z", "2026-11-24T02:00:00Z");
    let lookups: Vec<Lookup> = vec![
        Lookup {
            name: format!("session lookup {}", m.probe_session),
            cli: cli(&["session", &m.probe_session]),
            api: (format!("/api/sessions/{}", m.probe_session), vec![]),
            rg: vec!["-w".into(), "-F".into(), m.probe_session.clone()],
        },
        Lookup {
            name: format!("zxid lookup {}", m.probe_zxid),
            cli: cli(&["zxid", &m.probe_zxid]),
            api: (format!("/api/zxids/{}", m.probe_zxid), vec![]),
            rg: vec!["-w".into(), "-F".into(), m.probe_zxid.clone()],
        },
        Lookup {
            name: "kind + time range (session.expired in 2 h)".into(),
            cli: cli(&[
                "query",
                "kind:session.expired",
                "--since",
                since,
                "--until",
                until,
            ]),
            api: (
                "/api/query".into(),
                vec![
                    ("q", "kind:session.expired".into()),
                    ("since", since.into()),
                    ("until", until.into()),
                ],
            ),
            rg: vec!["-F".into(), "Expiring session".into()],
        },
    ];
    let reps = spec.reps.max(1);
    let mut baselines = Vec::new();
    for l in &lookups {
        log(&l.name);
        let a: Vec<&str> = l.cli.iter().map(String::as_str).collect();
        let ours = median((0..reps).map(|_| zk(&a)).collect::<Result<Vec<_>>>()?);
        let base = if rg_ok {
            let mut a: Vec<String> = vec!["--no-ignore".into(), "--hidden".into()];
            a.extend(l.rg.iter().cloned());
            a.push(cdir.clone());
            Some(median(
                (0..reps)
                    .map(|_| rg(a.clone()))
                    .collect::<Result<Vec<_>>>()?,
            ))
        } else {
            None
        };
        figures.push(lookup_figure(
            format!("{} (CLI process)", l.name),
            ours.secs,
            ours.max_rss,
            base.as_ref(),
        ));
        baselines.push(base);
    }
    // Hits equal to rg's: each id lookup answers the lines `rg -w` finds of the id (both
    // count lines of the text files; an entry is counted once with its folded lines).
    if rg_ok {
        for (what, id) in [("session", &m.probe_session), ("zxid", &m.probe_zxid)] {
            let ours = count_of(
                &spec.exe,
                &["--data-dir", &dns, what, id.as_str(), "--count"],
            )?;
            let theirs = rg_count(&["-w", "-F", id.as_str(), &cdir])?;
            log(&format!(
                "  {what} {id}: {ours} events, rg -w: {theirs} lines"
            ));
            figures.push(Figure {
                name: format!("{what} lookup hits (rg -w lines)"),
                value: ours as f64,
                unit: "events".into(),
                baseline: Some(theirs as f64),
                baseline_name: Some("rg -w lines".into()),
                ratio: (theirs > 0).then(|| ours as f64 / theirs as f64),
                target: Some("= rg (ratio 1)".into()),
                max_rss: 0,
                baseline_max_rss: None,
            });
        }
    }
    log("lookups through `zklens serve` (index held open, one connection kept alive)");
    match Service::start(&spec.exe, &dns) {
        Ok(svc) => {
            for (l, base) in lookups.iter().zip(&baselines) {
                // The first request after a commit opens the index; the figure is the steady state.
                let (total, _) = svc.get(&l.api.0, &l.api.1)?;
                let mut times = Vec::new();
                for _ in 0..reps * 5 {
                    times.push(svc.get(&l.api.0, &l.api.1)?.1);
                }
                times.sort_by(f64::total_cmp);
                log(&format!("  {}: {total} events", l.name));
                figures.push(lookup_figure(
                    format!("{} (service API)", l.name),
                    times[times.len() / 2],
                    svc.peak_rss(),
                    base.as_ref(),
                ));
            }
        }
        Err(e) => log(&format!("service lookups skipped: {e}")),
    }
    // ---- incidents --------------------------------------------------------------------------
    let incidents = |name: String, data: &str| -> Result<Figure> {
        let inc = median(
            (0..spec.reps.max(1))
                .map(|_| zk(&["--data-dir", data, "incidents", "-o", "json"]))
                .collect::<Result<Vec<_>>>()?,
        );
        Ok(Figure {
            name,
            value: inc.secs * 1000.0,
            unit: "ms".into(),
            baseline: None,
            baseline_name: None,
            ratio: None,
            target: Some("< 1000 ms per GB".into()),
            max_rss: inc.max_rss,
            baseline_max_rss: None,
        })
    };
    log("incident detection + reconstruction (whole corpus)");
    figures.push(incidents(
        "incidents: detect + reconstruct all, whole corpus".into(),
        &dns,
    )?);
    // ---- incidents on an incident-dense corpus -----------------------------------------------
    // A failover every 10 s of log time: detection must stay proportional to the events, not to
    // failovers x events (a quadratic step hides in a corpus with one failover per 10 minutes).
    let dense_dir = spec.dir.join("corpus-dense");
    let dense_bytes = (spec.bytes / 10).clamp(10_000_000, 200_000_000);
    let dense = corpus_at(
        &dense_dir,
        dense_bytes,
        2,
        10,
        corpus::Profile::Classic,
        &format!("{} MB incident-dense", dense_bytes / 1_000_000),
        log,
    )?;
    let dd = spec.dir.join("index-dense");
    let _ = std::fs::remove_dir_all(&dd);
    let dds = dd.to_string_lossy().into_owned();
    ingested(
        &zk(&[
            "--data-dir",
            &dds,
            "ingest",
            "-q",
            &dense_dir.to_string_lossy(),
        ])?,
        &dd,
    )?;
    log("incident detection + reconstruction (incident-dense corpus)");
    let failovers = std::fs::read_to_string(corpus::manifest_path(&dense_dir))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["failovers"].as_array().map(Vec::len))
        .unwrap_or(0);
    figures.push(incidents(
        format!(
            "incidents, dense corpus ({} MB, {failovers} failovers)",
            dense.bytes / 1_000_000
        ),
        &dds,
    )?);
    // ---- ingest memory by corpus size (mixed profile) ----------------------------------------
    memory_by_size(spec, &mut figures, log)?;

    // ---- txn log decoding vs TxnLogToolkit -----------------------------------------------------
    if let Some(txn) = txnlog_file(spec, log) {
        log(&format!("txn log decode: {}", txn.display()));
        let t = txn.to_string_lossy().into_owned();
        let ours = median(
            (0..spec.reps.max(1))
                .map(|_| zk(&["txnlog", "dump", &t]))
                .collect::<Result<Vec<_>>>()?,
        );
        let cp = [
            "zookeeper.jar",
            "zookeeper-jute.jar",
            "slf4j-api.jar",
            "slf4j-nop.jar",
        ]
        .iter()
        .map(|j| format!("/usr/share/java/{j}"))
        .collect::<Vec<_>>()
        .join(":");
        let java: Vec<String> = vec![
            "-cp".into(),
            cp,
            "org.apache.zookeeper.server.persistence.TxnLogToolkit".into(),
            "-d".into(),
            t.clone(),
        ];
        let theirs = median(
            (0..spec.reps.clamp(1, 3))
                .map(|_| measure_isolated(&spec.exe, Path::new("java"), &java))
                .collect::<Result<Vec<_>>>()?,
        );
        figures.push(Figure {
            name: "txnlog dump (TxnLogToolkit -d format)".into(),
            value: ours.secs * 1000.0,
            unit: "ms".into(),
            baseline: Some(theirs.secs * 1000.0),
            baseline_name: Some("Debian's TxnLogToolkit -d (JVM)".into()),
            ratio: Some(theirs.secs / ours.secs),
            target: Some(">= 20x faster".into()),
            max_rss: ours.max_rss,
            baseline_max_rss: Some(theirs.max_rss),
        });
    }
    Ok(Report {
        machine: machine(),
        corpus_bytes: m.bytes,
        corpus_files: m.files.len(),
        figures,
    })
}

/// An error unless the ingest into `data_dir` that `r` measured succeeded.
fn ingested(r: &Run, data_dir: &Path) -> Result<()> {
    if r.code == 0 {
        return Ok(());
    }
    Err(Error::BadInput {
        path: data_dir.to_path_buf(),
        offset: 0,
        reason: format!("ingest exited {}", r.code),
    })
}

/// One lookup, as the CLI, the service and rg ask it.
/// The number a `--count` command prints.
fn count_of(exe: &Path, args: &[&str]) -> Result<u64> {
    let out = Command::new(exe)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::io(exe, e))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| Error::Internal(format!("{args:?} printed no count")))
}

/// Lines `rg` finds in all files of the corpus (`-c`, summed over files), the generator's
/// manifest (which names the probe ids) left out.
fn rg_count(args: &[&str]) -> Result<u64> {
    let out = Command::new("rg")
        .args(["-c", "--no-ignore", "--hidden", "-g", "!.manifest.json"])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::io("rg", e))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum())
}

struct Lookup {
    name: String,
    cli: Vec<String>,
    api: (String, Vec<(&'static str, String)>),
    rg: Vec<String>,
}

fn lookup_figure(name: String, secs: f64, max_rss: u64, base: Option<&Run>) -> Figure {
    Figure {
        name,
        value: secs * 1000.0,
        unit: "ms".into(),
        baseline: base.map(|b| b.secs * 1000.0),
        baseline_name: base.map(|_| "rg over the raw files (all cores)".into()),
        ratio: base.map(|b| b.secs / secs),
        target: Some(">= 100x faster than rg".into()),
        max_rss,
        baseline_max_rss: base.map(|b| b.max_rss),
    }
}

/// `zklens serve` on the benchmark index (no sources, no ZooKeeper), stopped when dropped.
struct Service {
    child: std::process::Child,
    remote: crate::remote::Remote,
}

impl Service {
    fn start(exe: &Path, data_dir: &str) -> Result<Service> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("127.0.0.1:0", e))?
            .port();
        let child = Command::new(exe)
            .args(["--data-dir", data_dir, "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(exe, e))?;
        let svc = Service {
            child,
            remote: crate::remote::Remote::new(&format!("http://127.0.0.1:{port}"), None),
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while svc.remote.get_text("/health").is_err() {
            if Instant::now() > deadline {
                return Err(Error::Internal(
                    "zklens serve did not answer within 30 s".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(svc)
    }

    /// GETs an API path; returns the answer's `total` and the seconds the request took.
    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<(u64, f64)> {
        let t = Instant::now();
        let v: serde_json::Value = self.remote.get(path, params)?;
        let secs = t.elapsed().as_secs_f64();
        Ok((v["total"].as_u64().unwrap_or(0), secs))
    }

    /// The service's peak resident size so far (`VmHWM`), bytes.
    fn peak_rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The txn log to benchmark: the given one, or `DIR/txnlog/log.*`, generated by
/// `benches/gen-txnlog.py` on a real server when missing and possible.
fn txnlog_file(spec: &BenchSpec, log: &mut dyn FnMut(&str)) -> Option<PathBuf> {
    if let Some(t) = &spec.txnlog {
        return Some(t.clone());
    }
    let dir = spec.dir.join("txnlog");
    let find = || -> Option<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("log."))
            })
            .collect();
        v.sort();
        v.into_iter().next()
    };
    if let Some(f) = find() {
        return Some(f);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen-txnlog.py");
    if !script.exists() || !Path::new("/usr/share/java/zookeeper.jar").exists() {
        log("no txn log to decode (pass --txnlog FILE, or install zookeeper and python3-kazoo)");
        return None;
    }
    log("generating a 120k-transaction log on a real ZooKeeper server (benches/gen-txnlog.py)");
    let ok = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&dir)
        .args(["--txns", "120000"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        log("generating the txn log failed; skipping the txn log benchmark");
        return None;
    }
    find()
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => n += dir_size(&e.path()),
                Ok(_) => n += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    n
}

/// Renders the report as a table.
pub fn table(r: &Report) -> String {
    let mut s = format!(
        "zklens bench: {:.0} MB corpus, {} files, on {}\n",
        r.corpus_bytes as f64 / 1e6,
        r.corpus_files,
        r.machine
    );
    s.push_str(&format!(
        "{:<46} {:>12} {:>16} {:>9} {:>10} {:>10}  {}\n",
        "benchmark", "zklens", "baseline", "ratio", "RSS", "base RSS", "target"
    ));
    for f in &r.figures {
        let v = format!("{:.1} {}", f.value, f.unit);
        let b = f
            .baseline
            .map(|b| format!("{b:.1} {}", f.unit))
            .unwrap_or_else(|| "-".into());
        let ratio = f
            .ratio
            .map(|x| format!("{x:.1}x"))
            .unwrap_or_else(|| "-".into());
        let rss = if f.max_rss > 0 {
            format!("{:.0} MB", f.max_rss as f64 / 1e6)
        } else {
            "-".into()
        };
        let brss = f
            .baseline_max_rss
            .map(|x| format!("{:.0} MB", x as f64 / 1e6))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<46} {:>12} {:>16} {:>9} {:>10} {:>10}  {}\n",
            f.name,
            v,
            b,
            ratio,
            rss,
            brss,
            f.target.clone().unwrap_or_default()
        ));
    }
    s.push_str("baselines: ");
    let mut names: Vec<String> = r
        .figures
        .iter()
        .filter_map(|f| f.baseline_name.clone())
        .collect();
    names.dedup();
    s.push_str(&names.join("; "));
    s.push('\n');
    s
}
