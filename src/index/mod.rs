//! The index sink: tantivy for the fields people search on, the [`store`] for whole events, and
//! the checkpoint of every source committed atomically with both (in tantivy's commit payload).
//!
//! A data directory holds `index/` (tantivy), `events.zst` (the store) and nothing else.

pub mod store;

use std::borrow::Cow;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::indexer::UserOperation;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery, Weight};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{
    DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher, SegmentReader,
    TantivyDocument, Term, COLLECT_BLOCK_BUFFER_LEN,
};

use crate::checkpoint::CheckpointDelta;
pub use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::sink::{Batch, Sink};
use store::{StoreReader, StoreWriter};

/// Version of the on-disk layout; an index of another version is refused with a clear message.
pub const LAYOUT_VERSION: u32 = 1;

/// The schema's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Timestamp, ns since the epoch (i64, fast only).
    pub ts: Field,
    /// Node name.
    pub node: Field,
    /// Event kind.
    pub kind: Field,
    /// Level.
    pub level: Field,
    /// Source path.
    pub source: Field,
    /// Session id.
    pub session: Field,
    /// zxid.
    pub zxid: Field,
    /// Epoch.
    pub epoch: Field,
    /// Server id the line is about.
    pub server: Field,
    /// Leader id.
    pub leader: Field,
    /// Writer's myid.
    pub myid: Field,
    /// Peer address.
    pub peer: Field,
    /// znode path.
    pub path: Field,
    /// State word.
    pub state: Field,
    /// Thread.
    pub thread: Field,
    /// Logger.
    pub logger: Field,
    /// Message (full text).
    pub message: Field,
    /// Store address (fast only).
    pub addr: Field,
    /// Time bucket ([`bucket`]): indexed only, absent from indexes built before it existed
    /// (time ranges there read the `ts` column alone).
    pub tb: Option<Field>,
    /// The event's ensemble, indexed only when it is not
    /// [`DEFAULT_ENSEMBLE`](crate::event::DEFAULT_ENSEMBLE) (no term per event for the usual
    /// single ensemble); absent from indexes built before ensembles existed, where every event
    /// is in the default one.
    pub ensemble: Option<Field>,
}

/// log2 of a time bucket's width in ns: 2^36 ns, about 69 s.
pub const BUCKET_SHIFT: u32 = 36;

/// Most buckets a time range is split into (about 73 minutes: an incident's windows, the live
/// detector's reach). A longer range reads the `ts` column alone: its buckets' posting lists
/// cost more to open than the column scan (2 h over a 2 GB index: 19 ms against 15 for
/// `kind:session.expired` in that range), and a range that long is rarely the selective part
/// of a query.
pub const MAX_BUCKETS: u64 = 64;

/// The time bucket of `ts` (ns): every timed event is indexed under it, so a time range is the
/// union of a few posting lists, read in time proportional to the events in range. The `ts`
/// column alone answers a range by scanning every document of every segment (a batch ingest's
/// segments all span the whole corpus), which grows with the index.
pub fn bucket(ts: i64) -> u64 {
    // Arithmetic shift, then the bit pattern: equal for times in one bucket, distinct otherwise.
    (ts >> BUCKET_SHIFT) as u64
}

/// Events whose time lies in `lo..hi` (as bounds). Exact from the `ts` column; when the index
/// has time buckets (`fields.tb`) and the range spans at most [`MAX_BUCKETS`], intersected with
/// its buckets' terms, which then drive the search (each candidate's time is read alone). An
/// unbounded side is taken from the segments' latest or earliest time (`searcher`; without
/// one, the column alone answers).
pub fn time_query(
    fields: &Fields,
    searcher: Option<&Searcher>,
    lo: Bound<i64>,
    hi: Bound<i64>,
) -> Box<dyn Query> {
    // The range's first and last ns, inclusive; an empty range matches nothing (tantivy's
    // column scan underflows on one).
    let first_ns = match lo {
        Bound::Included(t) => Some(t),
        Bound::Excluded(t) => t.checked_add(1),
        Bound::Unbounded => Some(i64::MIN),
    };
    let last_ns = match hi {
        Bound::Included(t) => Some(t),
        Bound::Excluded(t) => t.checked_sub(1),
        Bound::Unbounded => Some(i64::MAX),
    };
    let (Some(first_ns), Some(last_ns)) = (first_ns, last_ns) else {
        return Box::new(tantivy::query::EmptyQuery);
    };
    if first_ns > last_ns {
        return Box::new(tantivy::query::EmptyQuery);
    }
    let exact: Box<dyn Query> = Box::new(RangeQuery::new(
        lo.map(|t| Term::from_field_i64(fields.ts, t)),
        hi.map(|t| Term::from_field_i64(fields.ts, t)),
    ));
    let Some(tb) = fields.tb else { return exact };
    // The buckets span the range, an open side closed at the segments' earliest or latest time.
    let first = match lo {
        Bound::Unbounded => segments_edge(searcher, false),
        _ => Some(first_ns),
    };
    let last = match hi {
        Bound::Unbounded => segments_edge(searcher, true),
        _ => Some(last_ns),
    };
    let (Some(first), Some(last)) = (first, last) else {
        return exact;
    };
    if last < first {
        return exact;
    }
    let (b0, b1) = (first >> BUCKET_SHIFT, last >> BUCKET_SHIFT);
    if b1.abs_diff(b0) >= MAX_BUCKETS {
        return exact;
    }
    let buckets = any_of(
        (b0..=b1)
            .map(|b| Term::from_field_u64(tb, b as u64))
            .collect(),
    );
    Box::new(TimeFilter {
        inner: buckets,
        lo: first_ns,
        hi: last_ns,
    })
}

/// Most terms [`any_of`] looks up one by one.
const ANY_OF_LOOKUPS: usize = 1024;

/// Documents holding any of `terms`. Up to [`ANY_OF_LOOKUPS`] terms, each is looked up in the
/// term dictionaries and their posting lists are merged, in time proportional to the terms and
/// their documents. tantivy's `TermSetQuery` intersects the set with each whole dictionary (a
/// million session ids) and fills a segment-sized bitset, which grows with the index; it is
/// used beyond that many terms.
pub fn any_of(terms: Vec<Term>) -> Box<dyn Query> {
    if terms.len() > ANY_OF_LOOKUPS {
        return Box::new(TermSetQuery::new(terms));
    }
    union_of(terms)
}

/// The union of `terms`' posting lists, however many (nothing when there are none).
pub fn union_of(terms: Vec<Term>) -> Box<dyn Query> {
    if terms.is_empty() {
        return Box::new(tantivy::query::EmptyQuery);
    }
    Box::new(BooleanQuery::new(
        terms
            .into_iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(t, IndexRecordOption::Basic));
                (Occur::Should, q)
            })
            .collect(),
    ))
}

/// The documents of `inner` whose time lies in `lo..=hi`, each checked in the `ts` column: the
/// exact edges of a range whose buckets drive the search. (tantivy's range over a column, even
/// as the lesser side of an intersection, scans the column from the segment's start to its
/// first match when it is built.)
#[derive(Debug)]
struct TimeFilter {
    inner: Box<dyn Query>,
    lo: i64,
    hi: i64,
}

impl Clone for TimeFilter {
    fn clone(&self) -> Self {
        TimeFilter {
            inner: self.inner.box_clone(),
            lo: self.lo,
            hi: self.hi,
        }
    }
}

impl Query for TimeFilter {
    fn weight(
        &self,
        scoring: tantivy::query::EnableScoring<'_>,
    ) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(TimeFilterWeight {
            inner: self.inner.weight(scoring)?,
            lo: self.lo,
            hi: self.hi,
        }))
    }
}

struct TimeFilterWeight {
    inner: Box<dyn Weight>,
    lo: i64,
    hi: i64,
}

impl Weight for TimeFilterWeight {
    fn scorer(
        &self,
        reader: &SegmentReader,
        boost: Score,
    ) -> tantivy::Result<Box<dyn tantivy::query::Scorer>> {
        let ts = reader.fast_fields().i64("ts")?;
        if reader.num_docs() == 0 || ts.max_value() < self.lo || ts.min_value() > self.hi {
            return Ok(Box::new(tantivy::query::EmptyScorer));
        }
        let mut s = TimeFilterScorer {
            inner: self.inner.scorer(reader, boost)?,
            ts,
            lo: self.lo,
            hi: self.hi,
            pinned: None,
        };
        s.settle();
        Ok(Box::new(s))
    }

    fn explain(
        &self,
        reader: &SegmentReader,
        doc: DocId,
    ) -> tantivy::Result<tantivy::query::Explanation> {
        let ts = reader.fast_fields().i64("ts")?;
        let t = ts.first(doc);
        if !t.is_some_and(|t| self.lo <= t && t <= self.hi) {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not in the time range"
            )));
        }
        self.inner.explain(reader, doc)
    }
}

struct TimeFilterScorer {
    inner: Box<dyn tantivy::query::Scorer>,
    ts: Column<i64>,
    lo: i64,
    hi: i64,
    /// A document found in range by `seek_danger` (the driver of an intersection checking a
    /// candidate): current, while `inner` stays behind it.
    pinned: Option<DocId>,
}

impl TimeFilterScorer {
    fn in_range(&self, d: DocId) -> bool {
        d < self.ts.num_docs()
            && self
                .ts
                .first(d)
                .is_some_and(|t| self.lo <= t && t <= self.hi)
    }

    /// Moves `inner` to its first document at or after where it stands that is in range.
    fn settle(&mut self) -> DocId {
        let mut d = self.inner.doc();
        while d != tantivy::TERMINATED && !self.in_range(d) {
            d = self.inner.advance();
        }
        d
    }
}

impl DocSet for TimeFilterScorer {
    fn advance(&mut self) -> DocId {
        match self.pinned.take() {
            Some(p) => {
                if self.inner.doc() <= p {
                    self.inner.seek(p + 1);
                }
            }
            None => {
                self.inner.advance();
            }
        }
        self.settle()
    }

    /// A target in range is checked in the column alone; the buckets' posting lists are walked
    /// only to find the next document in range after one that is not.
    fn seek(&mut self, target: DocId) -> DocId {
        let at = self.doc();
        if at >= target {
            return at;
        }
        if self.in_range(target) {
            self.pinned = Some(target);
            return target;
        }
        self.pinned = None;
        if self.inner.doc() < target {
            self.inner.seek(target);
        }
        self.settle()
    }

    /// A candidate is checked in the column alone, as tantivy's own column range does: the
    /// buckets' posting lists are not walked to it.
    fn seek_danger(&mut self, target: DocId) -> tantivy::SeekDangerResult {
        use tantivy::SeekDangerResult;
        if target >= tantivy::TERMINATED {
            return SeekDangerResult::SeekLowerBound(tantivy::TERMINATED);
        }
        if self.in_range(target) {
            self.pinned = Some(target);
            SeekDangerResult::Found
        } else {
            SeekDangerResult::SeekLowerBound(target + 1)
        }
    }

    fn doc(&self) -> DocId {
        self.pinned.unwrap_or_else(|| self.inner.doc())
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl tantivy::query::Scorer for TimeFilterScorer {
    fn score(&mut self) -> Score {
        1.0
    }
}

/// The latest (`latest`) or earliest time among the segments' `ts` columns.
fn segments_edge(searcher: Option<&Searcher>, latest: bool) -> Option<i64> {
    let mut v: Option<i64> = None;
    for seg in searcher?.segment_readers() {
        if seg.num_docs() == 0 {
            continue;
        }
        let c = seg.fast_fields().i64("ts").ok()?;
        let x = if latest { c.max_value() } else { c.min_value() };
        v = Some(match v {
            None => x,
            Some(v) if latest => v.max(x),
            Some(v) => v.min(x),
        });
    }
    v
}

/// Builds the schema.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Ids are indexed (terms, and ranges over the term dictionary). Only columns a search reads
    // are fast: ts and addr for every match, session for `sessions`, session and zxid for
    // ranges over millions of distinct values (`zxid:[* TO *]`; epochs, server ids and levels
    // have few terms). Each fast column costs at indexing and in every merge (issue 16: the
    // node, kind, level, epoch, server, leader and myid columns were about 10% of a mixed
    // corpus's ingest CPU, and never read).
    let num = || NumericOptions::default().set_indexed();
    // No field norms: nothing is ranked by score (answers are in time order), and they cost a
    // byte per document and field, in the index and in every merge.
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    );
    let keyword = || {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
    };
    let f = Fields {
        // Time ranges are answered from the fast field (tantivy's RangeQuery uses it when there
        // is one); indexing it too would add a term per event for nothing.
        ts: b.add_i64_field("ts", NumericOptions::default().set_fast()),
        node: b.add_text_field("node", keyword()),
        kind: b.add_text_field("kind", keyword()),
        level: b.add_text_field("level", keyword()),
        source: b.add_text_field("source", keyword()),
        session: b.add_u64_field("session", num().set_fast()),
        zxid: b.add_u64_field("zxid", num().set_fast()),
        epoch: b.add_u64_field("epoch", num()),
        server: b.add_u64_field("server", num()),
        leader: b.add_u64_field("leader", num()),
        myid: b.add_u64_field("myid", num()),
        peer: b.add_text_field("peer", keyword()),
        path: b.add_text_field("path", keyword()),
        state: b.add_text_field("state", keyword()),
        thread: b.add_text_field("thread", keyword()),
        logger: b.add_text_field("logger", keyword()),
        message: b.add_text_field("message", text),
        addr: b.add_u64_field("addr", NumericOptions::default().set_fast()),
        tb: Some(b.add_u64_field("tb", num())),
        ensemble: Some(b.add_text_field("ensemble", keyword())),
    };
    (b.build(), f)
}

/// The token that stands, in the indexed message, for the event's own session id.
pub const SESSION_MARK: &str = "zklensmarksession";
/// The token that stands, in the indexed message, for the event's own zxid.
pub const ZXID_MARK: &str = "zklensmarkzxid";

/// The message as indexed: each token that is the event's own session id or zxid, written as
/// ZooKeeper writes them (`0x` and lower-case hex without padding, in any case), is replaced
/// by [`SESSION_MARK`] or [`ZXID_MARK`] at the same position. The stored event keeps the
/// message as written.
///
/// Why (issue 16): ids are nearly all of the message field's distinct terms (a 2 GB corpus
/// names 3.7 M sessions), and distinct terms are what tantivy pays for (hashing, sorting, the
/// term dictionary, every merge). The id is already a term of the `session` or `zxid` field;
/// a search for the token finds it through the mark and that field
/// ([`crate::query`] does), so answers are unchanged. On a 390 MB mixed corpus the ingest
/// took 30% less CPU.
pub fn indexed_message(message: &str, session: Option<u64>, zxid: Option<u64>) -> Cow<'_, str> {
    if session.is_none() && zxid.is_none() {
        return Cow::Borrowed(message);
    }
    let b = message.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(k) = memchr::memchr(b'0', &b[from..]) {
        let i = from + k;
        from = i + 1;
        // A token starts here (tokens are runs of alphanumeric characters) with 0x.
        if !matches!(b.get(i + 1), Some(b'x' | b'X')) || !starts_token(message, i) {
            continue;
        }
        let end = message[i..]
            .char_indices()
            .find(|(_, c)| !c.is_alphanumeric())
            .map_or(message.len(), |(j, _)| i + j);
        let tok = &message[i..end];
        let mark = if session.is_some_and(|v| is_hex_of(tok, v)) {
            SESSION_MARK
        } else if zxid.is_some_and(|v| is_hex_of(tok, v)) {
            ZXID_MARK
        } else {
            continue;
        };
        let o = out.get_or_insert_with(|| String::with_capacity(message.len() + 8));
        o.push_str(&message[copied..i]);
        o.push_str(mark);
        copied = end;
        from = end;
    }
    match out {
        Some(mut o) => {
            o.push_str(&message[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(message),
    }
}

/// True when byte `i` of `s` starts a token (nothing alphanumeric just before it).
fn starts_token(s: &str, i: usize) -> bool {
    !s[..i]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
}

/// True when `tok` is `0x` and the lower-case hex of `v` without padding (any case).
pub fn is_hex_of(tok: &str, v: u64) -> bool {
    let Some(h) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) else {
        return false;
    };
    let mut buf = [0u8; 16];
    let n = hex_digits(v, &mut buf);
    h.len() == n && h.as_bytes().eq_ignore_ascii_case(&buf[16 - n..])
}

/// Writes the lower-case hex digits of `v` at the end of `buf`; returns how many.
fn hex_digits(mut v: u64, buf: &mut [u8; 16]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = 0;
    loop {
        buf[15 - n] = HEX[(v & 15) as usize];
        n += 1;
        v >>= 4;
        if v == 0 {
            return n;
        }
    }
}

/// Everything committed with the index: the store length and every source's checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommitState {
    /// Layout version.
    pub version: u32,
    /// Length of the event store that goes with this commit.
    pub store_len: u64,
    /// Every source's checkpoint and the zxid ranges indexed from txn logs (serialized as
    /// `sources` and `txn_ranges` beside the fields above, as the first layout wrote them).
    #[serde(flatten)]
    pub checkpoints: Checkpoints,
}

/// The paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (not created until written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    /// Root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    fn index(&self) -> PathBuf {
        self.root.join("index")
    }
    fn store(&self) -> PathBuf {
        self.root.join("events.zst")
    }
    /// True when an index exists here.
    pub fn exists(&self) -> bool {
        self.index().join("meta.json").exists()
    }
}

fn ierr(dir: &DataDir, e: impl std::fmt::Display) -> Error {
    Error::Index {
        path: dir.root.clone(),
        reason: e.to_string(),
    }
}

fn read_state(dir: &DataDir, index: &Index) -> Result<CommitState> {
    let metas = index.load_metas().map_err(|e| ierr(dir, e))?;
    let Some(p) = metas.payload else {
        return Ok(CommitState {
            version: LAYOUT_VERSION,
            ..CommitState::default()
        });
    };
    let st: CommitState =
        serde_json::from_str(&p).map_err(|e| ierr(dir, format!("bad commit payload: {e}")))?;
    if st.version != LAYOUT_VERSION {
        return Err(ierr(
            dir,
            format!(
                "index layout version {} is not {LAYOUT_VERSION}; re-ingest into a new --data-dir",
                st.version
            ),
        ));
    }
    Ok(st)
}

/// Documents sent to tantivy's indexing threads in one message.
const OPS_PER_MESSAGE: usize = 4;

/// Most documents in all the segments one merge reads (about 200 MB of index).
pub const MAX_MERGE_DOCS: u32 = 2_500_000;

/// The merge policy: small segments are gathered, smallest first, until together they hold
/// half of [`MAX_MERGE_DOCS`] or more (or [`BoundedMerges::max_segments`] of them), and merged
/// once into a segment that is never merged again. A document is rewritten by one merge at most.
///
/// Why (issue 16): a merge's memory grows with what it reads, its input pages mapped (counted
/// in the process's RSS) and per-document structures (the doc id mapping). tantivy's
/// `LogMergePolicy` merges up to eight segments below its size limit into one larger than it,
/// and at the end of a batch ingest its cascade merged most of the index at once: on a 2 GB
/// corpus with 3.7 M sessions the peak RSS was 973 MB, and grew with the corpus. Bounded, it
/// was 385 MB. Merging small groups early (four segments) rewrote most documents twice. Merged
/// once (and with fast columns only where a search reads them), the merges of a 390 MB mixed
/// corpus took 14 CPU-seconds instead of 21.
///
/// What is left below half the bound at the end of a batch ingest is merged by
/// [`IndexSink::close`].
#[derive(Debug, Clone)]
pub struct BoundedMerges {
    /// Most documents one merge reads.
    pub max_docs: u32,
    /// Most segments one merge reads (a service's commits make many small segments; they are
    /// merged this many at a time).
    pub max_segments: usize,
}

impl Default for BoundedMerges {
    fn default() -> Self {
        BoundedMerges {
            max_docs: MAX_MERGE_DOCS,
            max_segments: 8,
        }
    }
}

impl BoundedMerges {
    /// Segments below half the bound: the ones still to be merged.
    fn small<'a>(
        &self,
        segments: &'a [tantivy::index::SegmentMeta],
    ) -> Vec<&'a tantivy::index::SegmentMeta> {
        let mut small: Vec<&tantivy::index::SegmentMeta> = segments
            .iter()
            .filter(|s| s.num_docs() < self.max_docs / 2)
            .collect();
        small.sort_by_key(|s| (s.num_docs(), s.id()));
        small
    }
}

impl tantivy::indexer::MergePolicy for BoundedMerges {
    fn compute_merge_candidates(
        &self,
        segments: &[tantivy::index::SegmentMeta],
    ) -> Vec<tantivy::indexer::MergeCandidate> {
        use tantivy::indexer::MergeCandidate;
        let mut out = Vec::new();
        let mut group: Vec<SegmentId> = Vec::new();
        let mut docs = 0u32;
        // Each segment is below half the bound, and a group closes as soon as it reaches half:
        // no group exceeds the bound.
        for s in self.small(segments) {
            group.push(s.id());
            docs = docs.saturating_add(s.num_docs());
            if docs >= self.max_docs / 2 || group.len() >= self.max_segments {
                out.push(MergeCandidate(std::mem::take(&mut group)));
                docs = 0;
            }
        }
        out
    }
}

/// Writes events into the index and store.
pub struct IndexSink {
    dir: DataDir,
    fields: Fields,
    writer: IndexWriter<TantivyDocument>,
    store: Mutex<StoreWriter>,
    state: CommitState,
    /// The committed checkpoints with the deltas applied since.
    pending: Checkpoints,
}

impl std::fmt::Debug for IndexSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexSink").field("dir", &self.dir).finish()
    }
}

impl IndexSink {
    /// Opens or creates the index in `dir`, with `threads` indexing threads.
    pub fn open(dir: &DataDir, threads: usize) -> Result<IndexSink> {
        let ipath = dir.index();
        std::fs::create_dir_all(&ipath).map_err(|e| Error::io(&ipath, e))?;
        let (schema, mut fields) = schema();
        let index = if dir.exists() {
            Index::open_in_dir(&ipath).map_err(|e| ierr(dir, e))?
        } else {
            Index::create_in_dir(&ipath, schema).map_err(|e| ierr(dir, e))?
        };
        // An index built before time buckets keeps its schema: its new events get none either.
        fields.tb = index.schema().get_field("tb").ok();
        fields.ensemble = index.schema().get_field("ensemble").ok();
        let state = read_state(dir, &index)?;
        let threads = threads.clamp(1, 8);
        // 48 MB of indexing arena per thread, 192 MB at most in all (tantivy wants >= 15 MB a
        // thread): with 2 threads, background merges of 8 segments and the documents in flight,
        // a 2 GB ingest peaks at about 400 MB (at 64 MB a thread: 520 MB).
        let budget = (threads * 48_000_000).min(192_000_000);
        // One merge at a time (two cores do not gain from four), each bounded (BoundedMerges):
        // the merges at the end of a batch ingest held memory that grew with the corpus.
        let options = tantivy::indexer::IndexWriterOptions::builder()
            .num_worker_threads(threads)
            .memory_budget_per_thread(budget / threads)
            .num_merge_threads(1)
            .build();
        let writer = index
            .writer_with_options(options)
            .map_err(|e| ierr(dir, e))?;
        writer.set_merge_policy(Box::new(BoundedMerges::default()));
        let store = StoreWriter::open(&dir.store(), state.store_len)?;
        Ok(IndexSink {
            dir: dir.clone(),
            fields,
            writer,
            store: Mutex::new(store),
            pending: state.checkpoints.clone(),
            state,
        })
    }

    /// The last committed state (checkpoints).
    pub fn state(&self) -> &CommitState {
        &self.state
    }

    /// Where every source stands: the committed checkpoints with the deltas applied since.
    pub fn pending(&self) -> &Checkpoints {
        &self.pending
    }

    /// Applies a checkpoint delta to the pending set (committed by the next
    /// [`IndexSink::commit`]); refused when it does not start where its source stands.
    pub fn apply(&mut self, delta: CheckpointDelta) -> Result<()> {
        self.pending.apply(delta)?;
        Ok(())
    }

    /// Records zxid ranges indexed from `ensemble`'s txn logs (committed by the next commit).
    pub fn add_txn_ranges_in(&mut self, ensemble: &str, ranges: &[(u64, u64)]) {
        self.pending.add_txn_ranges_in(ensemble, ranges);
    }

    /// Sets the pending checkpoints wholesale (the service orders them by key before a commit).
    pub fn pending_mut(&mut self) -> &mut Checkpoints {
        &mut self.pending
    }

    /// Adds a batch of events (callable from several threads at once); their checkpoints are
    /// applied with [`IndexSink::apply`] (or both at once with [`Sink::send`]).
    pub fn add(&self, events: &[Event]) -> Result<()> {
        for chunk in events.chunks(store::FRAME_EVENTS) {
            let frame = store::encode_frame(chunk)?;
            let off = {
                let mut s = self
                    .store
                    .lock()
                    .map_err(|_| ierr(&self.dir, "store lock poisoned"))?;
                s.write_frame(&frame)?
            };
            // Events go to the indexing threads a few at a time, not one message each. tantivy's
            // queue holds 10,000 messages, so the batch size also bounds memory: 4 events a
            // message is at most 40,000 documents in flight.
            for (j, part) in chunk.chunks(OPS_PER_MESSAGE).enumerate() {
                let ops: Vec<UserOperation<TantivyDocument>> = part
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let addr = store::address(off, j * OPS_PER_MESSAGE + i);
                        UserOperation::Add(self.document(e, addr))
                    })
                    .collect();
                self.writer.run(ops).map_err(|e| ierr(&self.dir, e))?;
            }
        }
        Ok(())
    }

    fn document(&self, e: &Event, addr: u64) -> TantivyDocument {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        if let Some(t) = e.ts {
            d.add_i64(f.ts, t);
        }
        d.add_text(f.node, &e.node);
        if let Some(field) = f.ensemble {
            if !crate::event::is_default_ensemble(&e.ensemble) {
                d.add_text(field, &e.ensemble);
            }
        }
        for r in e.replicas.iter().filter(|r| **r != e.node) {
            d.add_text(f.node, r);
        }
        for p in &e.paths {
            d.add_text(f.path, p);
        }
        d.add_text(f.kind, &e.kind);
        if let Some(l) = e.level {
            d.add_text(f.level, l.as_str());
        }
        d.add_text(f.source, &e.source);
        let a = &e.attrs;
        for (field, v) in [
            (f.session, a.session),
            (f.zxid, a.zxid),
            (f.epoch, a.epoch),
            (f.server, a.server),
            (f.leader, a.leader),
            (f.myid, e.myid),
        ] {
            if let Some(v) = v {
                d.add_u64(field, v);
            }
        }
        for (field, v) in [
            (f.peer, a.peer.as_deref()),
            (f.path, a.path.as_deref()),
            (f.state, a.state.as_deref()),
            (f.thread, e.thread.as_deref()),
            (f.logger, e.logger.as_deref()),
        ] {
            if let Some(v) = v {
                d.add_text(field, v);
            }
        }
        d.add_text(f.message, indexed_message(&e.message, a.session, a.zxid));
        d.add_u64(f.addr, addr);
        if let (Some(tb), Some(t)) = (f.tb, e.ts) {
            d.add_u64(tb, bucket(t));
        }
        d
    }

    /// Makes everything added so far durable, together with the pending checkpoints. Either
    /// all of it is committed or none of it.
    pub fn commit(&mut self) -> Result<()> {
        let store_len = {
            let mut s = self
                .store
                .lock()
                .map_err(|_| ierr(&self.dir, "store lock poisoned"))?;
            s.sync()?;
            s.len()
        };
        let state = CommitState {
            version: LAYOUT_VERSION,
            store_len,
            checkpoints: self.pending.clone(),
        };
        let payload = serde_json::to_string(&state).map_err(|e| ierr(&self.dir, e))?;
        let mut prepared = self
            .writer
            .prepare_commit()
            .map_err(|e| ierr(&self.dir, e))?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(|e| ierr(&self.dir, e))?;
        self.state = state;
        Ok(())
    }

    /// Waits for background merges to finish, then merges what the merge policy left below
    /// half its bound into one segment (an ingest ends with few segments to open). Call it
    /// after the last [`commit`](Self::commit): the merged index keeps that commit's payload.
    pub fn close(self) -> Result<()> {
        let dir = self.dir.clone();
        let index = self.writer.index().clone();
        self.writer
            .wait_merging_threads()
            .map_err(|e| ierr(&dir, e))?;
        let policy = BoundedMerges::default();
        let metas = index
            .searchable_segment_metas()
            .map_err(|e| ierr(&dir, e))?;
        let left: Vec<SegmentId> = policy.small(&metas).iter().map(|s| s.id()).collect();
        if left.len() < 2 {
            return Ok(());
        }
        // tantivy's smallest arena (the builder's default): this writer only merges.
        let options = tantivy::indexer::IndexWriterOptions::builder()
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let mut writer: IndexWriter<TantivyDocument> = index
            .writer_with_options(options)
            .map_err(|e| ierr(&dir, e))?;
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        writer.merge(&left).wait().map_err(|e| ierr(&dir, e))?;
        // The merged segments' files go now, not at the next writer's start.
        writer
            .garbage_collect_files()
            .wait()
            .map_err(|e| ierr(&dir, e))?;
        writer.wait_merging_threads().map_err(|e| ierr(&dir, e))
    }
}

impl Sink for IndexSink {
    fn send(&mut self, batch: &Batch) -> Result<()> {
        if let Some(d) = &batch.delta {
            self.pending.check(d)?;
        }
        self.add(&batch.events)?;
        if let Some(d) = &batch.delta {
            self.pending.advance(d.clone());
        }
        self.pending
            .add_txn_ranges_in(batch.txn_ensemble(), &batch.txn_ranges);
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        IndexSink::commit(self)
    }

    fn checkpoints(&self) -> &Checkpoints {
        &self.pending
    }
}

/// Search results: addresses in time order.
#[derive(Debug, Clone, Default)]
pub struct Hits {
    /// Matching documents in all (those visited, when the search was interrupted).
    pub total: usize,
    /// (timestamp or i64::MIN, store address), ascending, at most the limit.
    pub hits: Vec<(i64, u64)>,
    /// Documents the query's scorers produced (deleted ones included): the work done.
    pub visited: u64,
    /// The search stopped at its deadline ([`IndexHandle::search_within`]): `total` and
    /// `hits` cover part of the index only.
    pub interrupted: bool,
}

/// Documents a search goes through between two looks at its deadline (a few microseconds of
/// work: a search given up stops within them).
pub const DEADLINE_CHECK_DOCS: u64 = 1024;

/// Hits spread over at least this many store frames per thread are fetched in parallel.
const PARALLEL_FETCH_FRAMES: usize = 16;

/// Read access to an index.
pub struct IndexHandle {
    dir: DataDir,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    state: CommitState,
    /// Per segment of the reader's searcher (which never reloads), its columns once opened.
    columns: ColumnCache,
}

/// The columns of each segment of a handle's searcher, filled as searches need them.
type ColumnCache = Arc<Vec<OnceLock<SegColumns>>>;

/// The fast columns a search reads for each match. Opening a column deserializes its block
/// metadata, milliseconds on a large segment, so a handle opens each once and every search
/// it runs (a held handle in `zklens serve` runs many) shares them.
#[derive(Clone)]
struct SegColumns {
    id: SegmentId,
    ts: Column<i64>,
    addr: Column<u64>,
}

impl SegColumns {
    fn open(seg: &SegmentReader) -> tantivy::Result<SegColumns> {
        let ff = seg.fast_fields();
        Ok(SegColumns {
            id: seg.segment_id(),
            ts: ff.i64("ts")?,
            addr: ff.u64("addr")?,
        })
    }
}

/// A segment's columns for a collector, opened at its first match: a lookup whose matches all
/// lie in one segment opens that segment's columns only. From the handle's cache when they
/// were opened there for this very segment.
struct LazyColumns {
    seg: SegmentReader,
    ord: usize,
    cache: ColumnCache,
    cols: Option<SegColumns>,
    err: Option<String>,
}

impl LazyColumns {
    fn new(cache: &ColumnCache, ord: u32, seg: &SegmentReader) -> LazyColumns {
        LazyColumns {
            seg: seg.clone(),
            ord: ord as usize,
            cache: Arc::clone(cache),
            cols: None,
            err: None,
        }
    }

    fn get(&mut self) -> Option<&SegColumns> {
        if self.cols.is_none() && self.err.is_none() {
            match self.open() {
                Ok(c) => self.cols = Some(c),
                Err(e) => {
                    self.err = Some(format!(
                        "segment {}: {e}",
                        self.seg.segment_id().short_uuid_string()
                    ))
                }
            }
        }
        self.cols.as_ref()
    }

    fn open(&self) -> tantivy::Result<SegColumns> {
        let id = self.seg.segment_id();
        match self.cache.get(self.ord) {
            Some(slot) => match slot.get() {
                Some(c) if c.id == id => Ok(c.clone()),
                Some(_) => SegColumns::open(&self.seg),
                None => {
                    let c = SegColumns::open(&self.seg)?;
                    Ok(slot.get_or_init(|| c).clone())
                }
            },
            None => SegColumns::open(&self.seg),
        }
    }

    /// What a segment collector hands back: its fruit, or why its columns did not open.
    fn fruit<T>(self, fruit: T) -> std::result::Result<T, String> {
        match self.err {
            Some(e) => Err(e),
            None => Ok(fruit),
        }
    }
}

/// The first error of the segments, or their fruits.
fn segment_fruits<T>(fruits: Vec<std::result::Result<T, String>>) -> tantivy::Result<Vec<T>> {
    fruits
        .into_iter()
        .collect::<std::result::Result<Vec<T>, String>>()
        .map_err(tantivy::TantivyError::InternalError)
}

impl std::fmt::Debug for IndexHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexHandle")
            .field("dir", &self.dir)
            .finish()
    }
}

impl IndexHandle {
    /// Opens an existing index.
    pub fn open(dir: &DataDir) -> Result<IndexHandle> {
        if !dir.exists() {
            return Err(Error::NoIndex {
                path: dir.root.clone(),
            });
        }
        let index = Index::open_in_dir(dir.index()).map_err(|e| ierr(dir, e))?;
        let state = read_state(dir, &index)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| ierr(dir, e))?;
        let (_, mut fields) = schema();
        fields.tb = index.schema().get_field("tb").ok();
        fields.ensemble = index.schema().get_field("ensemble").ok();
        let segments = reader.searcher().segment_readers().len();
        Ok(IndexHandle {
            dir: dir.clone(),
            index,
            reader,
            fields,
            state,
            columns: Arc::new((0..segments).map(|_| OnceLock::new()).collect()),
        })
    }

    /// The schema fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The tantivy index (for query parsing).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Committed state.
    pub fn state(&self) -> &CommitState {
        &self.state
    }

    /// Every committed event stored from store offset `from` (0, or a frame boundary such as
    /// an earlier commit's store length) to `to` (a frame boundary; None or past it: this
    /// commit's store length), in store order, a frame at a time with the offset the next
    /// frame starts at.
    pub fn scan_committed(
        &self,
        from: u64,
        to: Option<u64>,
        each: &mut dyn FnMut(Vec<Event>, u64) -> Result<()>,
    ) -> Result<()> {
        let to = to.map_or(self.state.store_len, |t| t.min(self.state.store_len));
        if from >= to {
            return Ok(());
        }
        StoreReader::open(&self.dir.store())?.scan(from, to, each)
    }

    /// The committed segments as of opening (what [`IndexHandle::search`] runs on).
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Number of indexed events.
    pub fn num_events(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The latest event time in the index, from the segments' column headers (no event read).
    pub fn last_time(&self) -> Result<Option<i64>> {
        let mut last = None;
        for seg in self.reader.searcher().segment_readers() {
            let ts = seg
                .fast_fields()
                .i64("ts")
                .map_err(|e| ierr(&self.dir, e))?;
            if seg.num_docs() > 0 {
                last = last.max(Some(ts.max_value()));
            }
        }
        Ok(last)
    }

    /// Runs a query; returns matches in time order (the first `limit` when given).
    pub fn search(&self, q: &dyn Query, limit: Option<usize>) -> Result<Hits> {
        self.search_within(q, limit, None)
    }

    /// [`search`](Self::search) that stops at `deadline`: it is looked at before each segment
    /// and every [`DEADLINE_CHECK_DOCS`] documents within one, and once passed the search
    /// stops there and says so ([`Hits::interrupted`]). The work between two looks is what
    /// tantivy does at once: a union of clauses computes a window of 4,096 documents whole.
    pub fn search_within(
        &self,
        q: &dyn Query,
        limit: Option<usize>,
        deadline: Option<Instant>,
    ) -> Result<Hits> {
        let searcher = self.reader.searcher();
        searcher
            .search(
                q,
                &TimeOrdered {
                    limit,
                    columns: &self.columns,
                    deadline,
                },
            )
            .map_err(|e| ierr(&self.dir, e))
    }

    /// Every match of `q` as (session, timestamp, store address), unordered: for questions
    /// asked of many sessions at once, answered from the fast columns without loading events.
    pub fn search_by_session(&self, q: &dyn Query) -> Result<Vec<(u64, i64, u64)>> {
        let searcher = self.reader.searcher();
        searcher
            .search(
                q,
                &BySession {
                    columns: &self.columns,
                },
            )
            .map_err(|e| ierr(&self.dir, e))
    }

    /// Loads events by address (in the given order).
    ///
    /// Each hit costs its frame's decompression, so hits spread over many frames (a session's
    /// events, written over hours) are read on several threads, each with its own reader and a
    /// contiguous run of frames.
    pub fn fetch(&self, addrs: &[u64]) -> Result<Vec<Event>> {
        // Read in store order, frame by frame, then restore the requested order.
        let mut order: Vec<usize> = (0..addrs.len()).collect();
        order.sort_by_key(|&i| addrs[i]);
        let frame = |k: usize| store::frame_of(addrs[order[k]]);
        let frames = (0..order.len())
            .filter(|&k| k == 0 || frame(k) != frame(k - 1))
            .count();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(frames / PARALLEL_FETCH_FRAMES)
            .max(1);
        // Cut `order` into `threads` runs, never inside a frame.
        let mut cuts = vec![0];
        for t in 1..threads {
            let mut k = (order.len() * t / threads).max(*cuts.last().unwrap_or(&0));
            while k > 0 && k < order.len() && frame(k) == frame(k - 1) {
                k += 1;
            }
            cuts.push(k);
        }
        cuts.push(order.len());
        let store = self.dir.store();
        let read = |run: &[usize]| -> Result<Vec<(usize, Event)>> {
            let mut r = StoreReader::open(&store)?;
            run.iter().map(|&i| Ok((i, r.get(addrs[i])?))).collect()
        };
        let runs: Vec<&[usize]> = cuts.windows(2).map(|w| &order[w[0]..w[1]]).collect();
        let parts: Vec<Result<Vec<(usize, Event)>>> = if runs.len() == 1 {
            runs.iter().map(|r| read(r)).collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = runs.iter().map(|r| s.spawn(|| read(r))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let mut out: Vec<Option<Event>> = vec![None; addrs.len()];
        for part in parts {
            for (i, e) in part? {
                out[i] = Some(e);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

struct BySession<'a> {
    columns: &'a ColumnCache,
}

struct SegBySession {
    cols: LazyColumns,
    session: Column<u64>,
    out: Vec<(u64, i64, u64)>,
}

impl Collector for BySession<'_> {
    type Fruit = Vec<(u64, i64, u64)>;
    type Child = SegBySession;

    fn for_segment(&self, ord: u32, seg: &SegmentReader) -> tantivy::Result<SegBySession> {
        Ok(SegBySession {
            cols: LazyColumns::new(self.columns, ord, seg),
            session: seg.fast_fields().u64("session")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<std::result::Result<Vec<(u64, i64, u64)>, String>>,
    ) -> tantivy::Result<Self::Fruit> {
        Ok(segment_fruits(fruits)?.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegBySession {
    type Fruit = std::result::Result<Vec<(u64, i64, u64)>, String>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(s) = self.session.first(doc) else {
            return;
        };
        if let Some(c) = self.cols.get() {
            self.out.push((
                s,
                c.ts.first(doc).unwrap_or(i64::MIN),
                c.addr.first(doc).unwrap_or(0),
            ));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.cols.fruit(self.out)
    }
}

struct TimeOrdered<'a> {
    limit: Option<usize>,
    columns: &'a ColumnCache,
    deadline: Option<Instant>,
}

struct SegTimeOrdered {
    cols: LazyColumns,
    limit: Option<usize>,
    heap: BinaryHeap<(i64, u64)>,
    all: Vec<(i64, u64)>,
    total: usize,
    visited: u64,
    interrupted: bool,
}

impl Collector for TimeOrdered<'_> {
    type Fruit = Hits;
    type Child = SegTimeOrdered;

    fn for_segment(&self, ord: u32, seg: &SegmentReader) -> tantivy::Result<SegTimeOrdered> {
        Ok(SegTimeOrdered {
            cols: LazyColumns::new(self.columns, ord, seg),
            limit: self.limit,
            heap: BinaryHeap::new(),
            all: Vec::new(),
            total: 0,
            visited: 0,
            interrupted: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    /// Drives the segment's scorer itself (tantivy's own loop cannot be stopped), a block of
    /// documents at a time, looking at the deadline before the segment and every
    /// [`DEADLINE_CHECK_DOCS`] documents.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<std::result::Result<Hits, String>> {
        let mut seg = self.for_segment(ord, reader)?;
        let past = || self.deadline.is_some_and(|d| Instant::now() >= d);
        if past() {
            seg.interrupted = true;
            return Ok(seg.harvest());
        }
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut buf = [0 as DocId; COLLECT_BLOCK_BUFFER_LEN];
        let mut unchecked = 0u64;
        loop {
            let n = scorer.fill_buffer(&mut buf);
            for &doc in &buf[..n] {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    seg.collect(doc, 0.0);
                }
            }
            seg.visited += n as u64;
            if n < buf.len() {
                break;
            }
            unchecked += n as u64;
            if unchecked >= DEADLINE_CHECK_DOCS {
                unchecked = 0;
                if past() {
                    seg.interrupted = true;
                    break;
                }
            }
        }
        Ok(seg.harvest())
    }

    fn merge_fruits(
        &self,
        fruits: Vec<std::result::Result<Hits, String>>,
    ) -> tantivy::Result<Hits> {
        let fruits = segment_fruits(fruits)?;
        let total = fruits.iter().map(|f| f.total).sum();
        let visited = fruits.iter().map(|f| f.visited).sum();
        let interrupted = fruits.iter().any(|f| f.interrupted);
        let mut hits: Vec<(i64, u64)> = fruits.into_iter().flat_map(|f| f.hits).collect();
        hits.sort_unstable();
        if let Some(l) = self.limit {
            hits.truncate(l);
        }
        Ok(Hits {
            total,
            hits,
            visited,
            interrupted,
        })
    }
}

impl SegmentCollector for SegTimeOrdered {
    type Fruit = std::result::Result<Hits, String>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        let Some(c) = self.cols.get() else {
            return;
        };
        let key = (
            c.ts.first(doc).unwrap_or(i64::MIN),
            c.addr.first(doc).unwrap_or(0),
        );
        match self.limit {
            None => self.all.push(key),
            Some(l) => {
                if self.heap.len() < l {
                    self.heap.push(key);
                } else if self.heap.peek().is_some_and(|top| key < *top) {
                    self.heap.pop();
                    self.heap.push(key);
                }
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut hits = if self.limit.is_some() {
            self.heap.into_vec()
        } else {
            self.all
        };
        hits.sort_unstable();
        let total = self.total;
        let (visited, interrupted) = (self.visited, self.interrupted);
        self.cols.fruit(Hits {
            total,
            hits,
            visited,
            interrupted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_are_bounded_and_large_segments_stay() {
        use tantivy::indexer::MergePolicy;
        let index = Index::create_in_ram(schema().0);
        let metas = |sizes: &[u32]| -> Vec<tantivy::index::SegmentMeta> {
            sizes
                .iter()
                .map(|&n| index.new_segment_meta(SegmentId::generate_random(), n))
                .collect()
        };
        let p = BoundedMerges::default();
        let docs = |m: &[tantivy::index::SegmentMeta], c: &tantivy::indexer::MergeCandidate| {
            c.0.iter()
                .map(|id| m.iter().find(|s| s.id() == *id).map_or(0, |s| s.num_docs()))
                .sum::<u32>()
        };
        // The end of a batch ingest: 84 segments of about 140,000 documents.
        let m = metas(&[140_000; 84]);
        let c = p.compute_merge_candidates(&m);
        assert!(!c.is_empty());
        for cand in &c {
            assert!(docs(&m, cand) <= MAX_MERGE_DOCS, "{}", docs(&m, cand));
            assert!((2..=8).contains(&cand.0.len()));
        }
        // No segment in two merges.
        let mut ids: Vec<_> = c.iter().flat_map(|c| c.0.iter().copied()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        // Segments of half the bound or more are never merged; three small ones wait for more.
        let m = metas(&[MAX_MERGE_DOCS / 2, MAX_MERGE_DOCS, 10, 20, 30]);
        assert!(p.compute_merge_candidates(&m).is_empty());
        // Two that fill a group are merged.
        let m = metas(&[1_200_000, 1_200_000, 1_200_000]);
        let c = p.compute_merge_candidates(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.len(), 2);
        // A group closes once it holds half the bound: what it makes is never merged again.
        let m = metas(&[400_000; 5]);
        let c = p.compute_merge_candidates(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.len(), 4);
        assert!(docs(&m, &c[0]) >= MAX_MERGE_DOCS / 2);
    }
    use crate::event::{Attrs, Level};
    use tantivy::query::{AllQuery, TermQuery};
    use tantivy::Term;

    fn ev(i: u64) -> Event {
        Event {
            ts: Some(1_700_000_000_000_000_000 + i as i64 * 1_000_000),
            node: Arc::from(if i % 2 == 0 { "zk1" } else { "zk2" }),
            myid: None,
            source: Arc::from("zk1/zookeeper.log"),
            offset: i * 100,
            line: i + 1,
            level: Some(Level::Info),
            thread: None,
            logger: None,
            message: format!("event number {i}"),
            kind: Arc::from(if i % 3 == 0 {
                "session.expired"
            } else {
                "client.connected"
            }),
            attrs: Attrs {
                session: Some(0x1000_0000_0000_0000 + i % 7),
                ..Attrs::default()
            },
            paths: Vec::new(),
            replicas: Vec::new(),
            ensemble: crate::event::default_ensemble(),
        }
    }

    /// A time range through the buckets finds exactly what the `ts` column alone finds: alone
    /// (the buckets drive), under a rare kind (the kind drives and each candidate's time is
    /// checked alone) and under a frequent one, with inclusive and exclusive edges inside and on
    /// bucket boundaries, over events spread across buckets and written out of time order.
    #[test]
    fn time_buckets_find_what_the_column_finds() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = DataDir::new(tmp.path());
        let base = 1_700_000_000_000_000_000i64;
        let step = (1i64 << BUCKET_SHIFT) / 40; // 40 events a bucket, 50 buckets in all
        let n = 2_000u64;
        // Interleaved halves: doc order is not time order.
        let events: Vec<Event> = (0..n)
            .map(|i| {
                let k = if i % 2 == 0 { i / 2 } else { n - 1 - i / 2 };
                let mut e = ev(k);
                e.ts = Some(base + k as i64 * step);
                e
            })
            .collect();
        let mut sink = IndexSink::open(&dir, 1).expect("open");
        for part in events.chunks(300) {
            sink.add(part).expect("add");
            sink.commit().expect("commit"); // several segments
        }
        sink.close().expect("close");
        let idx = IndexHandle::open(&dir).expect("handle");
        let f = *idx.fields();
        assert!(f.tb.is_some(), "a new index has time buckets");
        let column_only = Fields { tb: None, ..f };
        let searcher = idx.searcher();
        let kind = |k: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f.kind, k),
                IndexRecordOption::Basic,
            ))
        };
        let b = 1i64 << BUCKET_SHIFT;
        let edge = base - base.rem_euclid(b) + b; // a bucket boundary inside the data
        let ranges = [
            (Bound::Included(base), Bound::Excluded(base + 10 * step)),
            (Bound::Included(edge), Bound::Excluded(edge + b)),
            (Bound::Excluded(edge - 1), Bound::Included(edge + 3 * b)),
            (Bound::Included(base + 555 * step + 1), Bound::Unbounded),
            (Bound::Unbounded, Bound::Included(base + 40 * step)),
            (
                Bound::Included(base + 1_500 * step),
                Bound::Excluded(base + 1_500 * step),
            ),
        ];
        for (lo, hi) in ranges {
            let with = |fields: &Fields, other: Option<&str>| -> Vec<(i64, u64)> {
                let t = time_query(fields, Some(&searcher), lo, hi);
                let q: Box<dyn Query> = match other {
                    None => t,
                    Some(k) => Box::new(BooleanQuery::new(vec![
                        (Occur::Must, kind(k)),
                        (Occur::Must, t),
                    ])),
                };
                idx.search(q.as_ref(), None).expect("search").hits
            };
            for other in [None, Some("session.expired"), Some("client.connected")] {
                let exact = with(&column_only, other);
                let bucketed = with(&f, other);
                assert_eq!(bucketed, exact, "{lo:?}..{hi:?} with {other:?}");
            }
            let all = with(&column_only, None).len();
            let inside = events
                .iter()
                .filter_map(|e| e.ts)
                .filter(|t| std::ops::RangeBounds::contains(&(lo, hi), t))
                .count();
            assert_eq!(all, inside, "{lo:?}..{hi:?}");
        }
    }

    /// Events written in many frames come back whole, in the order asked, whether read on one
    /// thread (few frames) or several; and every search of a handle (which caches the columns)
    /// answers as a fresh handle does.
    #[test]
    fn fetch_and_search_over_many_frames() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = DataDir::new(tmp.path());
        let n = (store::FRAME_EVENTS * PARALLEL_FETCH_FRAMES * 4) as u64;
        let events: Vec<Event> = (0..n).map(ev).collect();
        let mut sink = IndexSink::open(&dir, 1).expect("open");
        sink.add(&events).expect("add");
        sink.commit().expect("commit");
        sink.close().expect("close");

        let idx = IndexHandle::open(&dir).expect("handle");
        let hits = idx.search(&AllQuery, None).expect("search");
        assert_eq!(hits.total, n as usize);
        // Time order is event order; ask for them in a scrambled order.
        let mut addrs: Vec<u64> = hits.hits.iter().map(|h| h.1).collect();
        let mut want: Vec<u64> = (0..n).collect();
        for k in (1..addrs.len()).rev() {
            let j = (k * 7919) % (k + 1);
            addrs.swap(k, j);
            want.swap(k, j);
        }
        let got = idx.fetch(&addrs).expect("fetch");
        assert_eq!(got.len(), addrs.len());
        for (e, i) in got.iter().zip(&want) {
            assert_eq!(e, &events[*i as usize]);
        }
        // A few hits in few frames: one thread, same events.
        let few = idx.fetch(&addrs[..5]).expect("fetch");
        assert_eq!(few, got[..5].to_vec());

        let session = |s: u64| {
            TermQuery::new(
                Term::from_field_u64(idx.fields().session, s),
                IndexRecordOption::Basic,
            )
        };
        for round in 0..2 {
            for s in 0..7u64 {
                let q = session(0x1000_0000_0000_0000 + s);
                let held = idx.search(&q, Some(10)).expect("search");
                let fresh = IndexHandle::open(&dir)
                    .expect("handle")
                    .search(&q, Some(10))
                    .expect("search");
                assert_eq!(held.total, fresh.total, "round {round} session {s}");
                assert_eq!(held.hits, fresh.hits, "round {round} session {s}");
                assert_eq!(held.total, (0..n).filter(|i| i % 7 == s).count());
            }
        }
    }

    /// Regression (issue 15): a search ran to its end whatever the request's time budget, so a
    /// request given up kept its worker searching. The search itself now stops at its deadline:
    /// before a segment (nothing visited) and within one (a part visited), well before the
    /// uninterrupted search would end, measured here on the same index and query.
    #[test]
    fn a_search_stops_at_its_deadline() {
        use std::time::Duration;
        use tantivy::query::{BooleanQuery, Occur};
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = DataDir::new(tmp.path());
        let n = 40_000u64;
        let mut sink = IndexSink::open(&dir, 1).expect("open");
        let events: Vec<Event> = (0..n).map(ev).collect();
        sink.add(&events).expect("add");
        sink.commit().expect("commit");
        sink.close().expect("close");
        let idx = IndexHandle::open(&dir).expect("handle");
        // A union of phrase queries ("event number" is in every message): each document is
        // produced by every clause, its positions checked. Clauses are doubled until the
        // uninterrupted search takes long enough to be cut (calibrated on this machine).
        let heavy = |clauses: usize| {
            let phrase = || {
                tantivy::query::PhraseQuery::new(vec![
                    Term::from_field_text(idx.fields().message, "event"),
                    Term::from_field_text(idx.fields().message, "number"),
                ])
            };
            BooleanQuery::new(
                (0..clauses)
                    .map(|_| (Occur::Should, Box::new(phrase()) as Box<dyn Query>))
                    .collect(),
            )
        };
        let mut clauses = 16;
        let (full, full_time) = loop {
            // Once to warm up, then measured.
            idx.search(&heavy(clauses), Some(10)).expect("search");
            let t0 = Instant::now();
            let full = idx
                .search_within(&heavy(clauses), Some(10), None)
                .expect("search");
            let took = t0.elapsed();
            if took >= Duration::from_millis(100) || clauses >= 4096 {
                break (full, took);
            }
            clauses *= 2;
        };
        assert_eq!((full.total, full.visited), (n as usize, n));
        assert!(!full.interrupted);
        assert!(
            full_time >= Duration::from_millis(100),
            "the query is too cheap to show an interruption: {full_time:?}"
        );
        let heavy = || heavy(clauses);

        // A deadline already passed: no segment is searched.
        let gone = idx
            .search_within(&heavy(), Some(10), Some(Instant::now()))
            .expect("search");
        assert!(gone.interrupted);
        assert_eq!(gone.visited, 0);

        // A tenth of the uninterrupted time: it stops there, a part of the documents visited.
        let t0 = Instant::now();
        let cut = idx
            .search_within(&heavy(), Some(10), Some(t0 + full_time / 10))
            .expect("search");
        let cut_time = t0.elapsed();
        assert!(cut.interrupted);
        assert!(cut.visited < n / 2, "{} of {n} visited", cut.visited);
        assert!(
            cut_time < full_time / 2,
            "{cut_time:?} with a deadline of {:?}, {full_time:?} uninterrupted",
            full_time / 10
        );
    }

    /// An index committed by the code before `checkpoint.rs` (its payload written literally
    /// here, as that code serialized it) opens, and its checkpoints are where a resume starts.
    #[test]
    fn an_index_committed_with_the_first_payload_layout_opens_and_resumes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = DataDir::new(tmp.path());
        let mut sink = IndexSink::open(&dir, 1).expect("open");
        sink.add(&[ev(0), ev(1)]).expect("add");
        let store_len = {
            let mut s = sink.store.lock().expect("lock");
            s.sync().expect("sync");
            s.len()
        };
        let old = format!(
            r#"{{"version":1,"store_len":{store_len},"sources":[{{"path":"zk1/zookeeper.log","fp":12,"fp_len":1024,"offset":200,"line":2,"node":"zk1","format":"zookeeper-log4j","events":2}},{{"path":"file:///var/log/zk2.log","fp":3,"fp_len":64,"offset":64,"line":1,"node":"zk2","format":"zookeeper-log4j","events":1,"file":{{"dev":2049,"ino":77}}}}],"txn_ranges":[[4294967297,4294967310]]}}"#
        );
        let mut prepared = sink.writer.prepare_commit().expect("prepare");
        prepared.set_payload(&old);
        prepared.commit().expect("commit");
        sink.close().expect("close");

        let idx = IndexHandle::open(&dir).expect("handle");
        assert_eq!(idx.num_events(), 2);
        let cps = &idx.state().checkpoints;
        assert_eq!(cps.sources.len(), 2);
        assert_eq!(cps.get("zk1/zookeeper.log").map(|c| c.offset), Some(200));
        let followed = cps.get("file:///var/log/zk2.log").expect("zk2");
        assert_eq!(
            followed.file,
            Some(crate::checkpoint::FileId { dev: 2049, ino: 77 })
        );
        assert!(cps.has_txn(4294967300));
        // Resume: a delta from the old checkpoint fits, and the next commit keeps the rest.
        let mut sink = IndexSink::open(&dir, 1).expect("reopen");
        let from = sink
            .pending()
            .get("zk1/zookeeper.log")
            .cloned()
            .expect("cp");
        let to = Checkpoint {
            offset: 300,
            line: 3,
            events: 3,
            ..from.clone()
        };
        Sink::send(
            &mut sink,
            &Batch::new(vec![ev(2)], CheckpointDelta::new(Some(from), to)),
        )
        .expect("the old checkpoint resumes");
        sink.commit().expect("commit");
        sink.close().expect("close");
        let idx = IndexHandle::open(&dir).expect("handle");
        assert_eq!(idx.num_events(), 3);
        let cps = &idx.state().checkpoints;
        assert_eq!(cps.get("zk1/zookeeper.log").map(|c| c.offset), Some(300));
        assert_eq!(cps.sources.len(), 2);
        assert_eq!(cps.txn_ranges, vec![(4294967297, 4294967310)]);
    }
}
