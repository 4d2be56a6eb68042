//! The batch driver (`zklens ingest`): discover files → plan each from the committed
//! checkpoints (resume, skip what is unchanged, read a truncated file again) → read every text
//! file as a [`TextFile`] source on every core → the index sink → one atomic commit of the
//! events with the checkpoint deltas the sources emitted. Txn logs are read together (one event
//! per transaction) and snapshots whole. A file that fails is reported and the others go on;
//! nothing read from any file is lost because another failed. A sink failure stops everything.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, CheckpointDelta, Checkpoints, Coverage};
use crate::error::{Error, Result};
use crate::index::{DataDir, IndexSink};
use crate::parser::{Notice, Registry};
use crate::sink::Batch;
use crate::source::text::{TextFile, TextOptions, TextReport};
use crate::source::txn::{SnapshotFile, TxnLogFiles};
use crate::source::{self, Content, NodeOrigin, NodeRule, Source, SourceFile, FINGERPRINT_LEN};

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Text reading options (format, zone, line limit).
    pub text: TextOptions,
    /// How nodes are named.
    pub nodes: NodeRule,
    /// The ensemble of files whose path names none (`ensemble=NAME`); None: the default one.
    pub ensemble: Option<String>,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Largest txn log record read (0 = [`DEFAULT_MAX_RECORD_LEN`](crate::txnlog::DEFAULT_MAX_RECORD_LEN)).
    pub max_record_len: usize,
    /// Most sessions of a snapshot's session table held (0 =
    /// [`DEFAULT_MAX_SNAPSHOT_SESSIONS`](crate::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS)).
    pub max_snapshot_sessions: usize,
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
        /// How much of the entries read was understood (text files).
        coverage: Option<Coverage>,
        /// The first entry without a timestamp, when too few have one (text files).
        first_untimed: Option<Notice>,
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
    /// Where the node's name came from.
    pub node_origin: NodeOrigin,
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
    /// How much of the text files' entries was understood.
    pub coverage: Coverage,
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

/// A worker's result for one plan: (plan index, report and checkpoint delta, events by kind).
type WorkerResult = (
    usize,
    Result<(TextReport, Option<CheckpointDelta>)>,
    BTreeMap<String, u64>,
);

struct Plan {
    file: SourceFile,
    gzip: bool,
    /// Where the file stands (None: read from its start).
    from: Option<Checkpoint>,
    note: Option<Notice>,
}

impl Plan {
    fn offset(&self) -> u64 {
        self.from.as_ref().map_or(0, |c| c.offset)
    }
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
    let (found, errors) = source::discover_in(paths, &opts.nodes, opts.ensemble.as_deref());
    let mut sink = IndexSink::open(dir, worker_count(opts.threads))?;
    let mut summary = Summary::default();
    for e in errors {
        let path = match &e {
            Error::Io { path, .. }
            | Error::BadInput { path, .. }
            | Error::NodeName { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        summary.files.push(FileOutcome {
            path,
            node: String::new(),
            node_origin: NodeOrigin::Unknown,
            status: Status::Failed(e),
            notices: vec![],
        });
    }
    let mut plans = Vec::new();
    let mut txn_files: Vec<SourceFile> = Vec::new();
    let mut snap_files: Vec<SourceFile> = Vec::new();
    for file in found {
        match file.content {
            Content::Text { gzip } => match plan(&file, gzip, sink.pending()) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => summary.files.push(outcome(&file, Status::Unchanged)),
                Err(e) => summary.files.push(outcome(&file, Status::Failed(e))),
            },
            Content::TxnLog { .. } | Content::Snapshot { .. } => {
                match binary_unchanged(&file, sink.pending()) {
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
            Content::Binary { offset, why } => {
                let e = Error::BadInput {
                    path: file.path.clone(),
                    offset,
                    reason: format!("binary data ({why}), not a text log; skipped"),
                };
                summary.files.push(outcome(&file, Status::Failed(e)));
            }
        }
    }
    let total_bytes: u64 = plans
        .iter()
        .map(|p| p.file.size.saturating_sub(p.offset()))
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
                let mut last_off = p.offset();
                let mut delta = None;
                let mut src =
                    TextFile::new(p.file.clone(), p.gzip, p.from.clone(), registry, &opts.text);
                let res = src.poll(&mut |b| {
                    for ev in &b.events {
                        *kind_counts.entry(ev.kind.clone()).or_default() += 1;
                    }
                    if !b.events.is_empty() {
                        sink.add(&b.events)?;
                    }
                    if let Some(e) = b.events.last() {
                        let d = e.offset.saturating_sub(last_off);
                        last_off = e.offset;
                        let now = done_bytes.fetch_add(d as usize, Ordering::Relaxed) as u64 + d;
                        progress(now, total_bytes);
                    }
                    if b.delta.is_some() {
                        delta = b.delta;
                    }
                    Ok(())
                });
                let res = match res {
                    Ok(_) => src.take_report().map(|r| (r, delta)).ok_or_else(|| {
                        Error::Internal("a batch source ended without its report".into())
                    }),
                    Err(Error::Sink(e)) => {
                        if let Ok(mut f) = fatal.lock() {
                            *f = Some(Error::Sink(e));
                        }
                        continue;
                    }
                    Err(e) => Err(e),
                };
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
    let max_record_len = match opts.max_record_len {
        0 => crate::txnlog::DEFAULT_MAX_RECORD_LEN,
        n => n,
    };
    let limits = BinaryLimits {
        max_record_len,
        max_snapshot_sessions: match opts.max_snapshot_sessions {
            0 => crate::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS,
            n => n,
        },
    };
    let (bin, bin_deltas, ranges) =
        read_binary(&txn_files, &snap_files, limits, &sink, &mut summary)?;
    for (ensemble, ranges) in &ranges {
        sink.add_txn_ranges_in(ensemble, ranges);
    }
    for d in bin_deltas {
        sink.apply(d)?;
    }
    for (file, status, notices) in bin {
        summary.files.push(FileOutcome {
            path: file.path.clone(),
            node: file.node.clone(),
            node_origin: file.node_origin.clone(),
            status,
            notices,
        });
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|r| r.0);
    let mut outcomes: Vec<FileOutcome> = Vec::new();
    let mut deltas: Vec<CheckpointDelta> = Vec::new();
    for (i, res, kinds) in results {
        let p = &plans[i];
        let mut notices: Vec<Notice> = p.note.iter().cloned().collect();
        match res {
            Ok((rep, delta)) => {
                for (k, n) in kinds {
                    *summary.kinds.entry(k).or_default() += n;
                }
                summary.lines += rep.lines;
                summary.events += rep.events;
                summary.bytes += rep.bytes;
                summary.coverage = summary.coverage.plus(rep.coverage);
                notices.extend(rep.notices.iter().cloned());
                deltas.extend(delta);
                let unchanged = p.offset() > 0 && rep.bytes == 0;
                outcomes.push(FileOutcome {
                    path: p.file.path.clone(),
                    node: p.file.node.clone(),
                    node_origin: p.file.node_origin.clone(),
                    status: if unchanged {
                        Status::Unchanged
                    } else {
                        Status::Indexed {
                            format: rep.format,
                            from: p.offset(),
                            lines: rep.lines,
                            events: rep.events,
                            bytes: rep.bytes,
                            coverage: Some(rep.coverage),
                            first_untimed: rep.first_untimed,
                        }
                    },
                    notices,
                });
            }
            Err(e) => outcomes.push(FileOutcome {
                path: p.file.path.clone(),
                node: p.file.node.clone(),
                node_origin: p.file.node_origin.clone(),
                status: Status::Failed(e),
                notices,
            }),
        }
    }
    apply_all(&mut sink, deltas);
    sink.commit()?;
    sink.close()?;
    summary.files.extend(outcomes);
    summary.files.sort_by(|a, b| a.path.cmp(&b.path));
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Applies the text files' deltas: files found under a new name (renamed, rotated) first, so
/// their checkpoint takes the old name's place before a new file of that name is added. Every
/// delta was planned against the set as committed, so one that no longer fits is a second file
/// of this run claiming the same committed checkpoint (a copy beside its growing original):
/// it is applied as a restart.
fn apply_all(sink: &mut IndexSink, deltas: Vec<CheckpointDelta>) {
    let (moves, rest): (Vec<_>, Vec<_>) = deltas
        .into_iter()
        .partition(|d| d.from.as_ref().is_some_and(|f| f.path != d.to.path));
    for d in moves.into_iter().chain(rest) {
        let to = d.to.clone();
        if sink.apply(d).is_err() {
            let _ = sink.apply(CheckpointDelta::new(None, to));
        }
    }
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
        node_origin: file.node_origin.clone(),
        status,
        notices: vec![],
    }
}

/// Decides where to start reading a text file, from the checkpoints: `None` = nothing new.
fn plan(file: &SourceFile, gzip: bool, set: &Checkpoints) -> Result<Option<Plan>> {
    let sources = set.sources.as_slice();
    let fp = source::fingerprint(&file.path, gzip, FINGERPRINT_LEN)?;
    let path = file.path.to_string_lossy();
    let fresh = Plan {
        file: file.clone(),
        gzip,
        from: None,
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
            return Ok(Some(Plan {
                note: Some(Notice {
                    offset: 0,
                    message: format!(
                        "file is shorter ({} bytes) than when it was indexed ({} bytes): truncated; reading it again from the start",
                        file.size, c.offset
                    ),
                }),
                ..fresh
            }));
        }
        if !gzip && c.offset == file.size {
            return Ok(None);
        }
        return Ok(Some(Plan {
            from: Some(c.clone()),
            ..fresh
        }));
    }
    Ok(Some(fresh))
}

/// A binary file (txn log, snapshot) whose checkpoint says it was fully read as it is now.
fn binary_unchanged(file: &SourceFile, set: &Checkpoints) -> Result<bool> {
    let path = file.path.to_string_lossy();
    let Some(c) = set.get(&path) else {
        return Ok(false);
    };
    let fp = source::fingerprint(&file.path, false, FINGERPRINT_LEN)?;
    Ok(c.fp == fp.hash && c.fp_len == fp.len && c.offset == file.size)
}

type BinaryOutcome = (SourceFile, Status, Vec<Notice>);

/// What reading the binary files gives: their outcomes, the checkpoint deltas and zxid ranges.
type BinaryRead = (
    Vec<BinaryOutcome>,
    Vec<CheckpointDelta>,
    Vec<(Arc<str>, Vec<(u64, u64)>)>,
);

/// What the binary readers may hold.
#[derive(Debug, Clone, Copy)]
struct BinaryLimits {
    max_record_len: usize,
    max_snapshot_sessions: usize,
}

/// Indexes the txn logs of all servers together (one event per transaction, with the servers
/// holding it) and every snapshot's sessions, through their sources; returns each file's
/// outcome and the checkpoint deltas and zxid ranges to commit.
fn read_binary(
    txn_files: &[SourceFile],
    snap_files: &[SourceFile],
    limits: BinaryLimits,
    sink: &IndexSink,
    summary: &mut Summary,
) -> Result<BinaryRead> {
    let mut out = Vec::new();
    let mut deltas = Vec::new();
    let mut ranges = Vec::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut take =
        |b: Batch, deltas: &mut Vec<CheckpointDelta>, ranges: &mut Vec<(u64, u64)>| -> Result<()> {
            for e in &b.events {
                *kinds.entry(e.kind.to_string()).or_default() += 1;
            }
            if !b.events.is_empty() {
                sink.add(&b.events)?;
            }
            deltas.extend(b.delta);
            ranges.extend(b.txn_ranges);
            Ok(())
        };
    // Each ensemble's txn logs are merged among themselves: two ensembles' zxids are unrelated.
    let mut groups: Vec<(Arc<str>, Vec<SourceFile>)> = Vec::new();
    for f in txn_files {
        match groups.iter_mut().find(|g| g.0 == f.ensemble) {
            Some(g) => g.1.push(f.clone()),
            None => groups.push((f.ensemble.clone(), vec![f.clone()])),
        }
    }
    for (ensemble, txn_files) in &groups {
        let txn_files = txn_files.as_slice();
        let first_of_group = out.len();
        let mut group_ranges = Vec::new();
        let mut src = TxnLogFiles::new(txn_files, sink.pending().txn_ranges_in(ensemble).to_vec())
            .with_max_record_len(limits.max_record_len);
        src.poll(&mut |b| take(b, &mut deltas, &mut group_ranges))
            .map_err(unwrap_sink)?;
        ranges.push((ensemble.clone(), group_ranges));
        let rep = src.take_report().unwrap_or_default();
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
                    coverage: None,
                    first_untimed: None,
                },
            };
            out.push((f.clone(), status, notices.remove(&i).unwrap_or_default()));
        }
        if rep.known > 0 {
            if let Some(first) = out.get_mut(first_of_group) {
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
        let mut src = SnapshotFile::new(f.clone()).with_max_sessions(limits.max_snapshot_sessions);
        let mut notices = Vec::new();
        let res = src.poll(&mut |mut b| {
            notices.append(&mut b.notices);
            // The batch ingest's snapshot checkpoints count no events (as they always did).
            let b = Batch {
                delta: b.delta.map(|mut d| {
                    d.to.events = 0;
                    d
                }),
                ..b
            };
            take(b, &mut deltas, &mut Vec::new())
        });
        match res {
            Ok(_) => {
                summary.events += src.events();
                out.push((
                    f.clone(),
                    Status::Indexed {
                        format: "snapshot".into(),
                        from: 0,
                        lines: 0,
                        events: src.events(),
                        bytes: f.size,
                        coverage: None,
                        first_untimed: None,
                    },
                    notices,
                ));
            }
            Err(Error::Sink(e)) => return Err(*e),
            Err(e) => out.push((f.clone(), Status::Failed(e), Vec::new())),
        }
    }
    for (k, n) in kinds {
        *summary.kinds.entry(k).or_default() += n;
    }
    Ok((out, deltas, ranges))
}

/// A sink's error as the sink raised it.
fn unwrap_sink(e: Error) -> Error {
    match e {
        Error::Sink(inner) => *inner,
        other => other,
    }
}
