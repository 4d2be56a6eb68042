//! Batch ingestion: files → (source, parser) → events → index sink, across all cores, with one
//! atomic commit of events and checkpoints at the end. A file that fails is reported and the
//! others go on; nothing read from any file is lost because another failed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::index::{Checkpoint, DataDir, IndexSink};
use crate::parser::{Notice, Registry};
use crate::source::text::{read_text, TextOptions, TextReport};
use crate::source::{self, Content, SourceFile, FINGERPRINT_LEN};

/// Events handed to the sink at once.
const BATCH: usize = 4096;

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Text reading options (format, zone, node override, line limit).
    pub text: TextOptions,
    /// Worker threads (0 = one per core).
    pub threads: usize,
}

/// What became of one file.
#[derive(Debug)]
pub enum Status {
    /// Indexed from `from` to its end.
    Indexed {
        /// Format used.
        format: String,
        /// Offset it was read from (0, or a checkpoint).
        from: u64,
        /// Lines read.
        lines: u64,
        /// Events indexed.
        events: u64,
        /// Bytes read.
        bytes: u64,
    },
    /// Already fully indexed.
    Unchanged,
    /// Not a source this command reads (with the reason).
    Skipped(String),
    /// Could not be read.
    Failed(Error),
}

/// One file's outcome.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// Node it was attributed to.
    pub node: String,
    /// What happened.
    pub status: Status,
    /// Notices (with offsets).
    pub notices: Vec<Notice>,
}

/// The result of an ingest run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Per-file outcomes, in discovery order.
    pub files: Vec<FileOutcome>,
    /// Events indexed by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Lines read.
    pub lines: u64,
    /// Events indexed.
    pub events: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// Files that failed.
    pub fn failures(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(f.status, Status::Failed(_)))
            .count()
    }
}

/// A worker's result for one plan: (plan index, report, events by kind).
type WorkerResult = (usize, Result<TextReport>, BTreeMap<String, u64>);

struct Plan {
    file: SourceFile,
    gzip: bool,
    from: u64,
    from_line: u64,
    fp: source::Fingerprint,
    prior: Option<usize>,
    prior_events: u64,
    note: Option<Notice>,
}

/// Ingests `paths` into `dir`. `progress` is called with bytes read as work advances.
pub fn ingest(
    paths: &[PathBuf],
    dir: &DataDir,
    registry: &Registry,
    opts: &IngestOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Summary> {
    let start = Instant::now();
    let (found, errors) = source::discover(paths);
    let mut sink = IndexSink::open(dir, worker_count(opts.threads))?;
    let mut summary = Summary::default();
    for e in errors {
        let path = match &e {
            Error::Io { path, .. } | Error::BadInput { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        summary.files.push(FileOutcome {
            path,
            node: String::new(),
            status: Status::Failed(e),
            notices: vec![],
        });
    }
    let mut plans = Vec::new();
    let mut txn_files: Vec<SourceFile> = Vec::new();
    let mut snap_files: Vec<SourceFile> = Vec::new();
    for file in found {
        match file.content {
            Content::Text { gzip } => match plan(&file, gzip, sink.state().sources.as_slice()) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => summary.files.push(outcome(&file, Status::Unchanged)),
                Err(e) => summary.files.push(outcome(&file, Status::Failed(e))),
            },
            Content::TxnLog { .. } | Content::Snapshot { .. } => {
                match binary_unchanged(&file, sink.state().sources.as_slice()) {
                    Ok(true) => summary.files.push(outcome(&file, Status::Unchanged)),
                    Ok(false) if matches!(file.content, Content::TxnLog { .. }) => {
                        txn_files.push(file)
                    }
                    Ok(false) => snap_files.push(file),
                    Err(e) => summary.files.push(outcome(&file, Status::Failed(e))),
                }
            }
            Content::Empty => summary
                .files
                .push(outcome(&file, Status::Skipped("empty file".into()))),
            Content::Binary { offset } => {
                let e = Error::BadInput {
                    path: file.path.clone(),
                    offset,
                    reason: "binary data (NUL byte), not a text log; skipped".into(),
                };
                summary.files.push(outcome(&file, Status::Failed(e)));
            }
        }
    }
    let total_bytes: u64 = plans
        .iter()
        .map(|p| p.file.size.saturating_sub(p.from))
        .sum();
    let done_bytes = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<WorkerResult>> = Mutex::new(Vec::new());
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    let workers = worker_count(opts.threads).min(plans.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(p) = plans.get(i) else { break };
                if fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
                    break;
                }
                let mut kind_counts: HashMap<Arc<str>, u64> = HashMap::new();
                let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
                let mut sink_err: Option<Error> = None;
                let mut last_off = p.from;
                let mut flush = |batch: &mut Vec<Event>| -> Result<()> {
                    if batch.is_empty() {
                        return Ok(());
                    }
                    let r = sink.add(batch);
                    if let Some(e) = batch.last() {
                        let d = e.offset.saturating_sub(last_off);
                        last_off = e.offset;
                        let now = done_bytes.fetch_add(d as usize, Ordering::Relaxed) as u64 + d;
                        progress(now, total_bytes);
                    }
                    batch.clear();
                    r
                };
                let res = read_text(
                    &p.file,
                    p.gzip,
                    p.from,
                    p.from_line,
                    registry,
                    &opts.text,
                    &mut |ev| {
                        *kind_counts.entry(ev.kind.clone()).or_default() += 1;
                        batch.push(ev);
                        if batch.len() >= BATCH {
                            if let Err(e) = flush(&mut batch) {
                                let msg = e.to_string();
                                sink_err = Some(e);
                                return Err(Error::Index {
                                    path: PathBuf::new(),
                                    reason: msg,
                                });
                            }
                        }
                        Ok(())
                    },
                );
                let res = res.and_then(|r| flush(&mut batch).map(|_| r));
                if let Some(e) = sink_err {
                    if let Ok(mut f) = fatal.lock() {
                        *f = Some(e);
                    }
                }
                let kinds: BTreeMap<String, u64> = kind_counts
                    .into_iter()
                    .map(|(k, n)| (k.to_string(), n))
                    .collect();
                if let Ok(mut r) = results.lock() {
                    r.push((i, res, kinds));
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut sources = sink.state().sources.clone();
    let mut txn_ranges = sink.state().txn_ranges.clone();
    let bin = read_binary(
        &txn_files,
        &snap_files,
        &sink,
        &mut txn_ranges,
        &mut summary,
    )?;
    for (file, status, notices) in bin {
        if matches!(status, Status::Indexed { .. }) {
            if let Ok(fp) = source::fingerprint(&file.path, false, FINGERPRINT_LEN) {
                let path = file.path.to_string_lossy().into_owned();
                let cp = Checkpoint {
                    path: path.clone(),
                    fp: fp.hash,
                    fp_len: fp.len,
                    offset: file.size,
                    line: 0,
                    node: file.node.clone(),
                    format: if matches!(file.content, Content::TxnLog { .. }) {
                        "txnlog"
                    } else {
                        "snapshot"
                    }
                    .into(),
                    events: 0,
                    file: None,
                };
                match sources.iter().position(|c| c.path == path) {
                    Some(j) => sources[j] = cp,
                    None => sources.push(cp),
                }
            }
        }
        summary.files.push(FileOutcome {
            path: file.path.clone(),
            node: file.node.clone(),
            status,
            notices,
        });
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|r| r.0);
    let mut outcomes: Vec<FileOutcome> = Vec::new();
    for (i, res, kinds) in results {
        let p = &plans[i];
        let mut notices: Vec<Notice> = p.note.iter().cloned().collect();
        match res {
            Ok(rep) => {
                for (k, n) in kinds {
                    *summary.kinds.entry(k).or_default() += n;
                }
                summary.lines += rep.lines;
                summary.events += rep.events;
                summary.bytes += rep.bytes;
                notices.extend(rep.notices.iter().cloned());
                // The file may have grown past the fingerprinted prefix while being read.
                let fp = source::fingerprint(&p.file.path, p.gzip, FINGERPRINT_LEN).unwrap_or(p.fp);
                let cp = Checkpoint {
                    path: p.file.path.to_string_lossy().into_owned(),
                    fp: fp.hash,
                    fp_len: fp.len,
                    offset: rep.end_offset,
                    line: rep.end_line,
                    node: opts
                        .text
                        .node
                        .clone()
                        .unwrap_or_else(|| p.file.node.clone()),
                    format: rep.format.clone(),
                    events: p.prior_events + rep.events,
                    file: None,
                };
                match p.prior {
                    Some(j) if j < sources.len() => sources[j] = cp,
                    _ => sources.push(cp),
                }
                let unchanged = p.from > 0 && rep.bytes == 0;
                outcomes.push(FileOutcome {
                    path: p.file.path.clone(),
                    node: p.file.node.clone(),
                    status: if unchanged {
                        Status::Unchanged
                    } else {
                        Status::Indexed {
                            format: rep.format,
                            from: p.from,
                            lines: rep.lines,
                            events: rep.events,
                            bytes: rep.bytes,
                        }
                    },
                    notices,
                });
            }
            Err(e) => outcomes.push(FileOutcome {
                path: p.file.path.clone(),
                node: p.file.node.clone(),
                status: Status::Failed(e),
                notices,
            }),
        }
    }
    sink.commit(sources, txn_ranges)?;
    sink.close()?;
    summary.files.extend(outcomes);
    summary.files.sort_by(|a, b| a.path.cmp(&b.path));
    summary.elapsed = start.elapsed();
    Ok(summary)
}

fn worker_count(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    }
}

fn outcome(file: &SourceFile, status: Status) -> FileOutcome {
    FileOutcome {
        path: file.path.clone(),
        node: file.node.clone(),
        status,
        notices: vec![],
    }
}

/// Decides where to start reading a text file, from the checkpoints: `None` = nothing new.
fn plan(file: &SourceFile, gzip: bool, sources: &[Checkpoint]) -> Result<Option<Plan>> {
    let fp = source::fingerprint(&file.path, gzip, FINGERPRINT_LEN)?;
    let path = file.path.to_string_lossy();
    let mut fresh = Plan {
        file: file.clone(),
        gzip,
        from: 0,
        from_line: 0,
        fp,
        prior: None,
        prior_events: 0,
        note: None,
    };
    // Same path first, then the same content anywhere (a copy, or a renamed file).
    let by_path = sources.iter().position(|c| c.path == path);
    // (whole-file fingerprints of short files count too, above a size where content is telling)
    let by_content = sources
        .iter()
        .position(|c| c.fp_len == fp.len && fp.len >= 64 && c.fp == fp.hash);
    for j in by_path.into_iter().chain(by_content) {
        let c = &sources[j];
        let same = if c.fp_len == fp.len {
            c.fp == fp.hash
        } else if c.fp_len < fp.len {
            source::fingerprint(&file.path, gzip, c.fp_len)?.hash == c.fp
        } else {
            false
        };
        if !same {
            continue;
        }
        if !gzip && c.offset > file.size {
            fresh.note = Some(Notice {
                offset: 0,
                message: format!(
                    "file is shorter ({} bytes) than when it was indexed ({} bytes): truncated; reading it again from the start",
                    file.size, c.offset
                ),
            });
            return Ok(Some(fresh));
        }
        if !gzip && c.offset == file.size {
            return Ok(None);
        }
        return Ok(Some(Plan {
            from: c.offset,
            from_line: c.line,
            prior: Some(j),
            prior_events: c.events,
            ..fresh
        }));
    }
    Ok(Some(fresh))
}

/// A binary file (txn log, snapshot) whose checkpoint says it was fully read as it is now.
fn binary_unchanged(file: &SourceFile, sources: &[Checkpoint]) -> Result<bool> {
    let path = file.path.to_string_lossy();
    let Some(c) = sources.iter().find(|c| c.path == path) else {
        return Ok(false);
    };
    let fp = source::fingerprint(&file.path, false, FINGERPRINT_LEN)?;
    Ok(c.fp == fp.hash && c.fp_len == fp.len && c.offset == file.size)
}

type BinaryOutcome = (SourceFile, Status, Vec<Notice>);

/// Indexes the txn logs of all servers together (one event per transaction, with the servers
/// holding it) and every snapshot's sessions.
fn read_binary(
    txn_files: &[SourceFile],
    snap_files: &[SourceFile],
    sink: &IndexSink,
    txn_ranges: &mut Vec<(u64, u64)>,
    summary: &mut Summary,
) -> Result<Vec<BinaryOutcome>> {
    let mut out = Vec::new();
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let flush = |batch: &mut Vec<Event>| -> Result<()> {
        if !batch.is_empty() {
            sink.add(batch)?;
            batch.clear();
        }
        Ok(())
    };
    if !txn_files.is_empty() {
        let known = txn_ranges.clone();
        let mut emit = |e: Event| -> Result<()> {
            *kinds.entry(e.kind.to_string()).or_default() += 1;
            batch.push(e);
            if batch.len() >= BATCH {
                flush(&mut batch)?;
            }
            Ok(())
        };
        let rep = crate::source::txn::read_txnlogs(txn_files, &known, &mut emit)?;
        flush(&mut batch)?;
        crate::source::txn::merge_ranges(txn_ranges, &rep.ranges);
        summary.events += rep.events;
        let mut failed: BTreeMap<usize, Error> = rep.failed.into_iter().collect();
        let mut notices = rep.notices;
        for (i, f) in txn_files.iter().enumerate() {
            let status = match failed.remove(&i) {
                Some(e) => Status::Failed(e),
                None => Status::Indexed {
                    format: "txnlog".into(),
                    from: 0,
                    lines: 0,
                    events: 0,
                    bytes: f.size,
                },
            };
            out.push((f.clone(), status, notices.remove(&i).unwrap_or_default()));
        }
        if rep.known > 0 {
            if let Some(first) = out.first_mut() {
                first.2.push(Notice {
                    offset: 0,
                    message: format!(
                        "{} transactions were already indexed by an earlier ingest (this server's copies are not added to them)",
                        rep.known
                    ),
                });
            }
        }
    }
    for f in snap_files {
        let mut n = 0u64;
        let mut emit = |e: Event| -> Result<()> {
            *kinds.entry(e.kind.to_string()).or_default() += 1;
            batch.push(e);
            n += 1;
            Ok(())
        };
        let res = crate::source::txn::read_snapshot(f, &mut emit);
        flush(&mut batch)?;
        match res {
            Ok((_, notices)) => {
                summary.events += n;
                out.push((
                    f.clone(),
                    Status::Indexed {
                        format: "snapshot".into(),
                        from: 0,
                        lines: 0,
                        events: n,
                        bytes: f.size,
                    },
                    notices,
                ));
            }
            Err(e) => out.push((f.clone(), Status::Failed(e), Vec::new())),
        }
    }
    for (k, n) in kinds {
        *summary.kinds.entry(k).or_default() += n;
    }
    Ok(out)
}
