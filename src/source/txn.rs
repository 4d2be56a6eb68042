//! ZooKeeper transaction logs and snapshots as event sources.
//!
//! Every server of an ensemble holds a copy of the same committed transactions. The logs of all
//! servers are read together in zxid order (a k-way merge over streaming readers), so each
//! transaction becomes one event that lists the servers holding it ([`Event::replicas`]).
//! Snapshots give one event per session they record (with the ephemerals it owned then).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use crate::checkpoint::{Checkpoint, CheckpointDelta};
use crate::error::Result;
use crate::event::{Attrs, Event, Level};
use crate::parser::Notice;
use crate::txnlog::{self, DynRead, NodeKind, Op, TxnLogReader, TxnRecord};

use super::{sink_error, Batch, Progress, Source, SourceFile};

/// A reader's notice as the ingest report shows it (the file is named by the report).
impl From<txnlog::Notice> for Notice {
    fn from(n: txnlog::Notice) -> Notice {
        Notice {
            offset: n.offset,
            message: n.message,
        }
    }
}

/// What reading a set of txn logs found.
#[derive(Debug, Default)]
pub struct TxnReport {
    /// Records read from all files (copies counted).
    pub records: u64,
    /// Distinct transactions emitted.
    pub events: u64,
    /// Transactions skipped because an earlier ingest indexed them.
    pub known: u64,
    /// Notices per file index.
    pub notices: BTreeMap<usize, Vec<Notice>>,
    /// Files that could not be opened, with the error.
    pub failed: Vec<(usize, crate::error::Error)>,
    /// Zxids emitted, as inclusive ranges.
    pub ranges: Vec<(u64, u64)>,
}

pub use crate::checkpoint::{in_ranges, merge_ranges};

/// Events handed out at once by the batch readers.
const BATCH: usize = 4096;

/// The txn logs of all servers read once, together, as a [`Source`] (batch ingest): one event
/// per distinct transaction, then a batch with the zxid ranges they cover, then one checkpoint
/// delta per file read whole. [`TxnLogFiles::take_report`] tells what was found.
#[derive(Debug)]
pub struct TxnLogFiles<'a> {
    files: &'a [SourceFile],
    known: Vec<(u64, u64)>,
    max_record_len: usize,
    report: Option<TxnReport>,
}

impl<'a> TxnLogFiles<'a> {
    /// Reads `files` (one ensemble's: their zxids are merged as one history), skipping
    /// transactions in the `known` zxid ranges.
    pub fn new(files: &'a [SourceFile], known: Vec<(u64, u64)>) -> TxnLogFiles<'a> {
        TxnLogFiles {
            files,
            known,
            max_record_len: txnlog::DEFAULT_MAX_RECORD_LEN,
            report: None,
        }
    }

    /// Sets the largest txn record read (default [`txnlog::DEFAULT_MAX_RECORD_LEN`]).
    pub fn with_max_record_len(mut self, max: usize) -> Self {
        self.max_record_len = max;
        self
    }

    /// What reading found (once read).
    pub fn take_report(&mut self) -> Option<TxnReport> {
        self.report.take()
    }
}

impl Source for TxnLogFiles<'_> {
    fn key(&self) -> &str {
        "txnlogs"
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
        let rep = read_txnlogs_with(self.files, &self.known, self.max_record_len, &mut |e| {
            batch.push(e);
            if batch.len() >= BATCH {
                let events = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                emit(Batch {
                    events,
                    ..Batch::default()
                })
                .map_err(sink_error)?;
            }
            Ok(())
        })?;
        emit(Batch {
            events: batch,
            txn_ranges: rep.ranges.clone(),
            txn_ensemble: self.files.first().map(|f| f.ensemble.clone()),
            ..Batch::default()
        })
        .map_err(sink_error)?;
        for (i, f) in self.files.iter().enumerate() {
            if rep.failed.iter().any(|(j, _)| *j == i) {
                continue;
            }
            if let Some(cp) = binary_checkpoint(f) {
                // Read whole: the delta restarts the file's checkpoint.
                emit(Batch {
                    delta: Some(CheckpointDelta::new(None, cp)),
                    ..Batch::default()
                })
                .map_err(sink_error)?;
            }
        }
        self.report = Some(rep);
        Ok(Progress::Done)
    }
}

/// One snapshot read whole as a [`Source`] (batch ingest): its sessions, with a checkpoint
/// delta when it was read to its end. A damaged snapshot hands out what it read, then fails.
#[derive(Debug)]
pub struct SnapshotFile {
    file: SourceFile,
    events: u64,
    max_sessions: usize,
}

impl SnapshotFile {
    /// Reads `file`.
    pub fn new(file: SourceFile) -> SnapshotFile {
        SnapshotFile {
            file,
            events: 0,
            max_sessions: txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS,
        }
    }

    /// Sets the most sessions of the session table held (default
    /// [`txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS`]).
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Events handed out.
    pub fn events(&self) -> u64 {
        self.events
    }
}

impl Source for SnapshotFile {
    fn key(&self) -> &str {
        self.file.path.to_str().unwrap_or("snapshot")
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        // Handed out in batches as they are made: memory follows a batch, not the snapshot.
        let mut events = Vec::new();
        let mut count = 0u64;
        let res = read_snapshot_with(&self.file, self.max_sessions, &mut |e| {
            events.push(e);
            count += 1;
            if events.len() >= BATCH {
                emit(Batch {
                    events: std::mem::take(&mut events),
                    ..Batch::default()
                })
                .map_err(sink_error)?;
            }
            Ok(())
        });
        self.events = count;
        match res {
            Ok((_, notices)) => {
                let delta = binary_checkpoint(&self.file).map(|cp| CheckpointDelta::new(None, cp));
                emit(Batch {
                    events,
                    delta,
                    txn_ranges: Vec::new(),
                    txn_ensemble: None,
                    bytes: self.file.size,
                    notices,
                })
                .map_err(sink_error)?;
                Ok(Progress::Done)
            }
            Err(e @ crate::error::Error::Sink(_)) => Err(e),
            Err(e) => {
                emit(Batch {
                    events,
                    ..Batch::default()
                })
                .map_err(sink_error)?;
                Err(e)
            }
        }
    }
}

/// The checkpoint of a txn log or snapshot read whole, keyed by its path: its fingerprint and
/// length (None when its first bytes cannot be read).
pub fn binary_checkpoint(file: &SourceFile) -> Option<Checkpoint> {
    binary_checkpoint_as(file, file.path.to_string_lossy().into_owned())
}

/// [`binary_checkpoint`] under another key (the service keys files by `file://` URL).
pub fn binary_checkpoint_as(file: &SourceFile, key: String) -> Option<Checkpoint> {
    let fp = super::fingerprint(&file.path, false, super::FINGERPRINT_LEN).ok()?;
    Some(Checkpoint {
        path: key,
        fp: fp.hash,
        fp_len: fp.len,
        offset: file.size,
        line: 0,
        node: file.node.clone(),
        format: if matches!(file.content, super::Content::TxnLog { .. }) {
            "txnlog"
        } else {
            "snapshot"
        }
        .into(),
        events: 0,
        file: None,
        coverage: None,
    })
}

struct Head {
    rec: TxnRecord,
}

/// Most ephemeral znodes followed at once (a bound on memory; ZooKeeper's own limit is far
/// lower in practice).
const MAX_EPHEMERALS: usize = 1_000_000;

/// Ephemeral znodes by owner, followed through the transactions in zxid order, to name what a
/// `closeSession` deleted when its record does not: servers before 3.6 (and 3.6+ with
/// `zookeeper.closeSessionTxn.enabled=false`) write no paths in it. Every step is a map
/// operation (a session's paths are kept in creation order by a sequence number), so a session
/// holding many ephemerals costs no more per delete than one holding few.
#[derive(Debug, Default)]
struct Ephemerals {
    by_session: HashMap<u64, BTreeMap<u64, String>>,
    owner: HashMap<String, (u64, u64)>,
    seq: u64,
}

impl Ephemerals {
    /// Follows one transaction; for a `closeSession` without paths, the ephemerals its session
    /// held (as far as the logs read tell).
    fn apply(&mut self, session: u64, op: &Op) -> Option<Vec<String>> {
        match op {
            Op::Create {
                path,
                ephemeral: true,
                ..
            } => {
                if self.owner.len() < MAX_EPHEMERALS && !self.owner.contains_key(path) {
                    self.seq += 1;
                    self.owner.insert(path.clone(), (session, self.seq));
                    self.by_session
                        .entry(session)
                        .or_default()
                        .insert(self.seq, path.clone());
                }
                None
            }
            Op::Delete { path } | Op::DeleteContainer { path } => {
                if let Some((s, seq)) = self.owner.remove(path) {
                    if let Some(v) = self.by_session.get_mut(&s) {
                        v.remove(&seq);
                    }
                }
                None
            }
            Op::Multi { ops: Some(ops) } => {
                // A failed multi changed nothing.
                if !ops.iter().any(|o| matches!(o.op, Op::Error { .. })) {
                    for o in ops {
                        self.apply(session, &o.op);
                    }
                }
                None
            }
            Op::CloseSession { paths_to_delete } => {
                let held: Vec<String> = self
                    .by_session
                    .remove(&session)
                    .unwrap_or_default()
                    .into_values()
                    .collect();
                for p in &held {
                    self.owner.remove(p);
                }
                match paths_to_delete {
                    Some(_) => None,
                    None => Some(held),
                }
            }
            _ => None,
        }
    }
}

/// Most notices kept per file about transactions that differ between servers (the rest are
/// counted in one more notice): bounded memory however many records two logs disagree on.
const MAX_DIVERGENCE_NOTICES: usize = 100;

/// Reads the txn logs `files` together, in zxid order, calling `emit` once per distinct
/// transaction (skipping zxids in `known`), with the default record limit.
pub fn read_txnlogs(
    files: &[SourceFile],
    known: &[(u64, u64)],
    emit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<TxnReport> {
    read_txnlogs_with(files, known, txnlog::DEFAULT_MAX_RECORD_LEN, emit)
}

/// [`read_txnlogs`] with a record limit of `max_record_len` bytes. A file that cannot be
/// opened, or whose reading fails (a damaged compressed stream), is reported in
/// [`TxnReport::failed`] with the offset; what was read from it before is kept, and the other
/// files are read to their ends. Only `emit`'s own error stops the whole.
pub fn read_txnlogs_with(
    files: &[SourceFile],
    known: &[(u64, u64)],
    max_record_len: usize,
    emit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<TxnReport> {
    let mut rep = TxnReport::default();
    let mut readers: Vec<Option<TxnLogReader<DynRead>>> = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        match txnlog::open_txnlog_with(&f.path, max_record_len) {
            Ok(r) => readers.push(Some(r)),
            Err(e) => {
                rep.failed.push((i, e));
                readers.push(None);
            }
        }
    }
    let mut heads: Vec<Option<Head>> = (0..files.len()).map(|_| None).collect();
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let advance = |i: usize,
                   readers: &mut Vec<Option<TxnLogReader<DynRead>>>,
                   rep: &mut TxnReport|
     -> Option<Head> {
        let r = readers[i].as_mut()?;
        let next = r.next();
        if let Some(Ok(rec)) = next {
            rep.records += 1;
            return Some(Head { rec });
        }
        // The end of this file, or a failure that ends it alone.
        let notes: Vec<Notice> = r.take_notices().into_iter().map(Notice::from).collect();
        if !notes.is_empty() {
            rep.notices.entry(i).or_default().extend(notes);
        }
        if let Some(Err(e)) = next {
            rep.failed.push((i, e));
        }
        readers[i] = None;
        None
    };
    for (i, head) in heads.iter_mut().enumerate() {
        if let Some(h) = advance(i, &mut readers, &mut rep) {
            heap.push(Reverse((h.rec.zxid, i)));
            *head = Some(h);
        }
    }
    let mut diverging: HashMap<usize, u64> = HashMap::new();
    let mut kinds: HashMap<String, Arc<str>> = HashMap::new();
    let mut ephemerals = Ephemerals::default();
    let mut run: Option<(u64, u64)> = None;
    while let Some(Reverse((zxid, first))) = heap.pop() {
        let mut holders = vec![first];
        while let Some(Reverse((z, j))) = heap.peek().copied() {
            if z != zxid {
                break;
            }
            heap.pop();
            holders.push(j);
        }
        let recs: Vec<Head> = holders.iter().filter_map(|&j| heads[j].take()).collect();
        if let Some(h) = recs.first() {
            let deleted = ephemerals.apply(h.rec.session, &h.rec.op);
            if !in_ranges(known, zxid) {
                let mut replicas: Vec<Arc<str>> = holders
                    .iter()
                    .map(|&j| Arc::from(files[j].node.as_str()))
                    .collect();
                replicas.sort();
                replicas.dedup();
                // Different bodies for one zxid: a txn some server later truncated away.
                let name = h.rec.op.name();
                for (k, other) in recs.iter().enumerate().skip(1) {
                    if other.rec.op.name() != name {
                        let seen = diverging.entry(holders[k]).or_default();
                        *seen += 1;
                        if *seen > MAX_DIVERGENCE_NOTICES as u64 {
                            continue;
                        }
                        rep.notices.entry(holders[k]).or_default().push(Notice {
                            offset: other.rec.offset,
                            message: format!(
                                "zxid 0x{zxid:x} is {} here but {} in {} (a transaction not committed by the ensemble)",
                                other.rec.op.name(),
                                name,
                                files[holders[0]].path.display()
                            ),
                        });
                    }
                }
                let file = &files[holders[0]];
                let mut ev = txn_event(&h.rec, file, replicas, &mut kinds);
                if let Some(paths) = deleted {
                    ev.paths = paths;
                }
                emit(ev)?;
                rep.events += 1;
                run = match run {
                    Some((lo, hi)) if zxid == hi + 1 => Some((lo, zxid)),
                    Some(r) => {
                        rep.ranges.push(r);
                        Some((zxid, zxid))
                    }
                    None => Some((zxid, zxid)),
                };
            } else {
                rep.known += 1;
            }
        }
        for j in holders {
            if let Some(h) = advance(j, &mut readers, &mut rep) {
                heap.push(Reverse((h.rec.zxid, j)));
                heads[j] = Some(h);
            }
        }
    }
    if let Some(r) = run {
        rep.ranges.push(r);
    }
    for (i, n) in diverging {
        if n > MAX_DIVERGENCE_NOTICES as u64 {
            rep.notices.entry(i).or_default().push(Notice {
                offset: 0,
                message: format!(
                    "{} more transactions differ from another server's copy (not listed)",
                    n - MAX_DIVERGENCE_NOTICES as u64
                ),
            });
        }
    }
    Ok(rep)
}

fn txn_event(
    rec: &TxnRecord,
    file: &SourceFile,
    replicas: Vec<Arc<str>>,
    kinds: &mut HashMap<String, Arc<str>>,
) -> Event {
    let name = rec.op.name();
    let kind = kinds
        .entry(name.clone())
        .or_insert_with(|| Arc::from(format!("txn.{name}").as_str()))
        .clone();
    let mut attrs = Attrs {
        session: (rec.session != 0).then_some(rec.session),
        zxid: Some(rec.zxid),
        path: rec.op.path().map(str::to_string),
        ..Attrs::default()
    };
    let mut paths = Vec::new();
    match &rec.op {
        Op::CreateSession { timeout_ms } => attrs.timeout_ms = u64::try_from(*timeout_ms).ok(),
        Op::CloseSession { paths_to_delete } => {
            paths = paths_to_delete.clone().unwrap_or_default();
            attrs.state = Some(if rec.cxid == 0 { "expired" } else { "closed" }.into());
        }
        Op::Create { ephemeral, .. } => {
            attrs.state = Some(
                if *ephemeral {
                    "ephemeral"
                } else {
                    "persistent"
                }
                .into(),
            )
        }
        Op::CreateTtl { .. } => attrs.state = Some("ttl".into()),
        Op::CreateContainer { .. } => attrs.state = Some("container".into()),
        Op::Error { code } => {
            attrs.state = Some(
                txnlog::err_name(*code)
                    .map(str::to_string)
                    .unwrap_or_else(|| code.to_string()),
            )
        }
        Op::Multi { ops } => {
            let ops = ops.as_deref().unwrap_or_default();
            paths = ops
                .iter()
                .filter_map(|s| s.op.path().map(str::to_string))
                .collect();
            let failed = ops.iter().any(|s| matches!(s.op, Op::Error { .. }));
            attrs.state = Some(if failed { "failed" } else { "ok" }.into());
        }
        _ => {}
    }
    attrs.derive();
    // The toolkit's line without its (locale-dependent) date.
    let line = txnlog::toolkit_line(rec, &chrono_tz::UTC);
    let message = match line.find(" session 0x") {
        Some(i) => line[i + 1..].trim_end().to_string(),
        None => line.trim_end().to_string(),
    };
    let bad = !rec.crc_ok || matches!(rec.op, Op::Malformed { .. });
    Event {
        // A time out of the range of i64 nanoseconds is no time (never clamped).
        ts: rec.time_ms.checked_mul(1_000_000),
        node: replicas
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::from(file.node.as_str())),
        myid: None,
        source: Arc::from(file.path.to_string_lossy().as_ref()),
        offset: rec.offset,
        line: 0,
        level: Some(if bad { Level::Warn } else { Level::Info }),
        thread: None,
        logger: Some("txnlog".into()),
        message,
        kind,
        attrs,
        paths,
        replicas,
        ensemble: file.ensemble.clone(),
    }
}

/// Reads one snapshot: one `snapshot.session` event per session it records (with the ephemerals
/// the session owned then). Timestamps are the newest node change in the snapshot (a snapshot
/// records no time of its own). Holds at most
/// [`DEFAULT_MAX_SNAPSHOT_SESSIONS`](txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS) sessions.
pub fn read_snapshot(
    file: &SourceFile,
    emit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<(u64, Vec<Notice>)> {
    read_snapshot_with(file, txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS, emit)
}

/// [`read_snapshot`] holding at most `max_sessions` sessions of the table: the others are
/// skipped and reported in the notices (with the offset of the first); the nodes are still read
/// for the sessions held. The ephemerals gathered are those of the sessions held, within
/// [`txnlog::MAX_SNAPSHOT_EPHEMERALS`].
pub fn read_snapshot_with(
    file: &SourceFile,
    max_sessions: usize,
    emit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<(u64, Vec<Notice>)> {
    let mut r = txnlog::open_snapshot_with(&file.path, max_sessions)?;
    let sessions: Vec<(u64, i32)> = r.sessions().iter().map(|s| (s.id, s.timeout_ms)).collect();
    // Keyed by the sessions held: owners the table does not list (or that were skipped) are
    // of no event.
    let mut eph = txnlog::EphemeralOwners::new(r.sessions(), 0);
    let mut newest: i64 = 0;
    let mut nodes = 0u64;
    for n in r.by_ref() {
        let n = n?;
        nodes += 1;
        // Times an i64 of nanoseconds cannot hold are not times (a damaged or hostile stat).
        for t in [n.stat.mtime, n.stat.ctime] {
            if t.checked_mul(1_000_000).is_some() {
                newest = newest.max(t);
            }
        }
        if let NodeKind::Ephemeral(owner) = n.stat.kind() {
            eph.add(owner, n.path);
        }
    }
    let mut notices: Vec<Notice> = r.take_notices().into_iter().map(Notice::from).collect();
    if eph.over() > 0 {
        notices.push(Notice {
            offset: 0,
            message: format!(
                "{} ephemerals not attributed to their sessions: over the {} paths ({} MiB) held",
                eph.over(),
                txnlog::MAX_SNAPSHOT_EPHEMERALS,
                txnlog::MAX_SNAPSHOT_EPHEMERAL_BYTES >> 20
            ),
        });
    }
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let snap_zxid = name
        .strip_prefix("snapshot.")
        .map(|s| s.split('.').next().unwrap_or(s))
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    let kind: Arc<str> = Arc::from("snapshot.session");
    let mut count = 0;
    for (sid, timeout) in sessions {
        let owned = eph.take(sid);
        let message = format!(
            "{name}: session 0x{sid:x} timeout {timeout} ms, {} ephemeral(s){}{}",
            owned.len(),
            if owned.is_empty() { "" } else { ": " },
            owned.join(", ")
        );
        let mut attrs = Attrs {
            session: Some(sid),
            zxid: snap_zxid,
            timeout_ms: u64::try_from(timeout).ok(),
            ..Attrs::default()
        };
        attrs.derive();
        emit(Event {
            ts: (newest > 0).then(|| newest * 1_000_000),
            node: Arc::from(file.node.as_str()),
            myid: None,
            source: Arc::from(file.path.to_string_lossy().as_ref()),
            offset: 0,
            line: 0,
            level: Some(Level::Info),
            thread: None,
            logger: Some("snapshot".into()),
            message,
            kind: kind.clone(),
            attrs,
            paths: owned,
            replicas: Vec::new(),
            ensemble: file.ensemble.clone(),
        })?;
        count += 1;
    }
    let _ = nodes;
    Ok((count, notices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_lookup() {
        let mut r = vec![(1, 5), (10, 12)];
        merge_ranges(&mut r, &[(6, 8), (20, 20), (11, 15)]);
        assert_eq!(r, vec![(1, 8), (10, 15), (20, 20)]);
        assert!(in_ranges(&r, 7));
        assert!(!in_ranges(&r, 9));
        assert!(in_ranges(&r, 20));
        assert!(!in_ranges(&r, 21));
        assert!(!in_ranges(&[], 1));
    }

    /// A txn log of createSession records at `times` (ms since the epoch).
    fn log_at(times: &[i64]) -> Vec<u8> {
        let mut v = b"ZKLG".to_vec();
        v.extend_from_slice(&2i32.to_be_bytes());
        v.extend_from_slice(&0i64.to_be_bytes());
        for (i, t) in times.iter().enumerate() {
            let mut p = Vec::new();
            p.extend_from_slice(&(0x100 + i as i64).to_be_bytes());
            p.extend_from_slice(&0i32.to_be_bytes());
            p.extend_from_slice(&(i as i64 + 1).to_be_bytes());
            p.extend_from_slice(&t.to_be_bytes());
            p.extend_from_slice(&(-10i32).to_be_bytes());
            p.extend_from_slice(&4000i32.to_be_bytes());
            v.extend_from_slice(&u64::from(crate::txnlog::jute::adler32(&p)).to_be_bytes());
            v.extend_from_slice(&(p.len() as i32).to_be_bytes());
            v.extend_from_slice(&p);
            v.push(0x42);
        }
        v
    }

    #[test]
    fn txn_times_outside_the_range_are_no_time() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = d.path().join("log.1");
        // 2026, 9999-12-31 and 1600-01-01 (ms): the last two are beyond i64 nanoseconds.
        let times = [1_795_573_566_256, 253_402_214_400_000, -11_676_096_000_000];
        std::fs::write(&path, log_at(&times)).expect("write");
        let size = std::fs::metadata(&path).expect("meta").len();
        let mut file =
            SourceFile::unnamed(&path, super::super::Content::TxnLog { gzip: false }, size);
        file.node = "zk1".into();
        let mut ts = Vec::new();
        let rep = read_txnlogs(&[file], &[], &mut |e| {
            ts.push(e.ts);
            Ok(())
        })
        .expect("read");
        assert_eq!(rep.events, 3);
        assert_eq!(ts, vec![Some(1_795_573_566_256_000_000), None, None]);
    }
}
