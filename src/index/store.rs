//! The event store: every event, whole, in zstd-compressed frames appended to one file.
//!
//! tantivy indexes the fields and keeps only an address per document (`frame offset << 20 |
//! position in frame`); the event itself (message, stack trace, every attribute) lives here. This
//! keeps the index small and fast to build, and makes every raw entry retrievable.
//!
//! File layout: `ZKLSTOR1` then frames `{u32 compressed_len, u32 crc32(compressed), u32 count,
//! compressed}` (little-endian). The index's commit payload records the store length that goes
//! with it; on open the store is cut back to that length, so an interrupted ingest leaves neither
//! orphan events nor index entries pointing nowhere.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::{Attrs, Event, Level};

const MAGIC: &[u8; 8] = b"ZKLSTOR1";
const FRAME_HEAD: u64 = 12;
/// Events per frame at most (the address keeps 20 bits for the position).
pub const MAX_FRAME_EVENTS: usize = 1 << 20;
/// Events per frame written: small enough that fetching one event decompresses little (a
/// lookup touches one frame per hit), large enough for zstd to find the repetition.
pub const FRAME_EVENTS: usize = 64;

/// Largest decompressed frame accepted (a frame declaring more is decoded by streaming).
const MAX_RAW_FRAME: u64 = 64 << 20;

/// zstd level of the store's frames.
const ZSTD_LEVEL: i32 = 3;

/// Builds the store address of event `i` of the frame at `offset`.
pub fn address(offset: u64, i: usize) -> u64 {
    (offset << 20) | i as u64
}

/// The frame (its offset in the store) holding the event at `addr`.
pub fn frame_of(addr: u64) -> u64 {
    addr >> 20
}

fn split(addr: u64) -> (u64, usize) {
    (addr >> 20, (addr & ((1 << 20) - 1)) as usize)
}

/// Appends frames. One writer per store.
#[derive(Debug)]
pub struct StoreWriter {
    path: PathBuf,
    file: File,
    len: u64,
}

impl StoreWriter {
    /// Opens (creating if needed) the store and cuts it back to `committed_len` (0 = empty).
    pub fn open(path: &Path, committed_len: u64) -> Result<StoreWriter> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let on_disk = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let len = if committed_len < MAGIC.len() as u64 {
            file.set_len(0).map_err(|e| Error::io(path, e))?;
            file.write_all(MAGIC).map_err(|e| Error::io(path, e))?;
            MAGIC.len() as u64
        } else {
            if on_disk < committed_len {
                return Err(Error::Store {
                    path: path.to_path_buf(),
                    offset: on_disk,
                    reason: format!(
                        "store is shorter than its last commit ({committed_len} bytes)"
                    ),
                });
            }
            if on_disk > committed_len {
                file.set_len(committed_len)
                    .map_err(|e| Error::io(path, e))?;
            }
            committed_len
        };
        file.seek(SeekFrom::Start(len))
            .map_err(|e| Error::io(path, e))?;
        Ok(StoreWriter {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// Current length (the value to record in a commit after [`sync`](Self::sync)).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no frame has been written.
    pub fn is_empty(&self) -> bool {
        self.len <= MAGIC.len() as u64
    }

    /// Writes one frame made by [`encode_frame`]; returns its offset.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<u64> {
        let off = self.len;
        let mut head = [0u8; FRAME_HEAD as usize];
        head[0..4].copy_from_slice(&(frame.data.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&crc32fast::hash(&frame.data).to_le_bytes());
        head[8..12].copy_from_slice(&frame.count.to_le_bytes());
        self.file
            .write_all(&head)
            .and_then(|_| self.file.write_all(&frame.data))
            .map_err(|e| Error::io(&self.path, e))?;
        self.len += FRAME_HEAD + frame.data.len() as u64;
        Ok(off)
    }

    /// Makes everything written durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}

/// A compressed frame ready to be written.
#[derive(Debug)]
pub struct Frame {
    data: Vec<u8>,
    count: u32,
}

/// Encodes and compresses events into a frame (done by ingest workers, outside any lock).
pub fn encode_frame(events: &[Event]) -> Result<Frame> {
    let mut raw = Vec::with_capacity(events.len() * 160);
    for e in events {
        encode(e, &mut raw);
    }
    let failed = |e: std::io::Error| Error::Store {
        path: PathBuf::from("(memory)"),
        offset: 0,
        reason: format!("compression failed: {e}"),
    };
    // One compression context per thread, reused rather than set up for every frame.
    thread_local! {
        static CCTX: std::cell::Cell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::Cell::new(None) };
    }
    let data = CCTX
        .with(|c| {
            let mut cc = match c.take() {
                Some(cc) => cc,
                None => zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            };
            let out = cc.compress(&raw);
            c.set(Some(cc));
            out
        })
        .map_err(failed)?;
    Ok(Frame {
        data,
        count: events.len() as u32,
    })
}

/// Reads events back by address.
pub struct StoreReader {
    path: PathBuf,
    file: File,
    /// The last frame read: its offset, decompressed bytes, declared event count, and the start
    /// of each event found so far (events are decoded one by one, on demand).
    cache: Option<CachedFrame>,
    /// Reused decompression context.
    dctx: Option<zstd::bulk::Decompressor<'static>>,
}

#[derive(Debug)]
struct CachedFrame {
    off: u64,
    raw: Vec<u8>,
    count: usize,
    starts: Vec<usize>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("path", &self.path)
            .finish()
    }
}

impl StoreReader {
    /// Opens a store for reading.
    pub fn open(path: &Path) -> Result<StoreReader> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(StoreReader {
            path: path.to_path_buf(),
            file,
            cache: None,
            dctx: None,
        })
    }

    /// The event at `addr`.
    pub fn get(&mut self, addr: u64) -> Result<Event> {
        let (off, i) = split(addr);
        if self.cache.as_ref().map(|c| c.off) != Some(off) {
            let (raw, count) = self.read_frame(off)?;
            self.cache = Some(CachedFrame {
                off,
                raw,
                count,
                starts: vec![0],
            });
        }
        let found = self.cache.as_mut().and_then(|f| {
            if i >= f.count {
                return None;
            }
            // Walk (without decoding) to the event's start, remembering starts on the way.
            while f.starts.len() <= i {
                let mut cur = Cursor {
                    b: &f.raw,
                    i: *f.starts.last()?,
                };
                skip(&mut cur)?;
                f.starts.push(cur.i);
            }
            decode(&mut Cursor {
                b: &f.raw,
                i: f.starts[i],
            })
        });
        found.ok_or_else(|| self.bad(off, format!("no event {i} in frame, or it is damaged")))
    }

    /// Every event of the frames from offset `from` (a frame's start, or 0 for the first) up
    /// to `to` (a frame boundary: a committed store length), a frame at a time, each with the
    /// offset where the next frame starts.
    pub fn scan(
        &mut self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(Vec<Event>, u64) -> Result<()>,
    ) -> Result<()> {
        let mut off = from.max(MAGIC.len() as u64);
        while off < to {
            let (raw, count, len) = self.read_frame_len(off)?;
            let mut c = Cursor { b: &raw, i: 0 };
            let mut events = Vec::with_capacity(count);
            for i in 0..count {
                let e = decode(&mut c)
                    .ok_or_else(|| self.bad(off, format!("event {i} of the frame is damaged")))?;
                events.push(e);
            }
            let next = off + FRAME_HEAD + len;
            each(events, next)?;
            off = next;
        }
        Ok(())
    }

    fn bad(&self, offset: u64, reason: String) -> Error {
        Error::Store {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn read_frame(&mut self, off: u64) -> Result<(Vec<u8>, usize)> {
        self.read_frame_len(off).map(|(raw, count, _)| (raw, count))
    }

    /// A frame's decompressed bytes, its event count and its compressed length.
    fn read_frame_len(&mut self, off: u64) -> Result<(Vec<u8>, usize, u64)> {
        let mut head = [0u8; FRAME_HEAD as usize];
        self.file
            .seek(SeekFrom::Start(off))
            .and_then(|_| self.file.read_exact(&mut head))
            .map_err(|e| self.bad(off, format!("cannot read frame header: {e}")))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let count = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        if len > 256 << 20 || count > MAX_FRAME_EVENTS {
            return Err(self.bad(off, format!("implausible frame (len {len}, count {count})")));
        }
        let mut data = vec![0u8; len];
        self.file
            .read_exact(&mut data)
            .map_err(|e| self.bad(off, format!("cannot read frame: {e}")))?;
        if crc32fast::hash(&data) != crc {
            return Err(self.bad(off, "frame checksum mismatch".into()));
        }
        // One decompression context for the reader's life, and the output sized from the
        // frame's declared content size: no context set up and torn down per frame.
        let size = match zstd::zstd_safe::get_frame_content_size(&data) {
            Ok(Some(n)) if n <= MAX_RAW_FRAME => n as usize,
            _ => {
                return self
                    .decode_streaming(off, &data)
                    .map(|raw| (raw, count, len as u64))
            }
        };
        let mut dctx = match self.dctx.take() {
            Some(d) => d,
            None => zstd::bulk::Decompressor::new()
                .map_err(|e| self.bad(off, format!("cannot decompress frame: {e}")))?,
        };
        let mut raw = Vec::with_capacity(size);
        let r = dctx.decompress_to_buffer(&data, &mut raw);
        self.dctx = Some(dctx);
        r.map_err(|e| self.bad(off, format!("cannot decompress frame: {e}")))?;
        Ok((raw, count, len as u64))
    }

    fn decode_streaming(&self, off: u64, data: &[u8]) -> Result<Vec<u8>> {
        zstd::stream::decode_all(data)
            .map_err(|e| self.bad(off, format!("cannot decompress frame: {e}")))
    }
}

// ---- compact binary encoding of one event ---------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            put_varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
        None => put_varint(out, 0),
    }
}

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_varint(out, v);
        }
        None => out.push(0),
    }
}

/// The first byte of an event: bit 0 says a time follows, bit 1 that the event names an
/// ensemble other than the default (its name follows the node). Events of the default ensemble
/// are written as before ensembles existed, so older stores read unchanged.
const HAS_TS: u8 = 1;
const HAS_ENSEMBLE: u8 = 2;

fn encode(e: &Event, out: &mut Vec<u8>) {
    let named = !crate::event::is_default_ensemble(&e.ensemble);
    let tag = if named { HAS_ENSEMBLE } else { 0 };
    match e.ts {
        Some(t) => {
            out.push(tag | HAS_TS);
            out.extend_from_slice(&t.to_le_bytes());
        }
        None => out.push(tag),
    }
    put_str(out, &e.node);
    if named {
        put_str(out, &e.ensemble);
    }
    put_opt_u64(out, e.myid);
    put_str(out, &e.source);
    put_varint(out, e.offset);
    put_varint(out, e.line);
    out.push(match e.level {
        None => 0,
        Some(Level::Trace) => 1,
        Some(Level::Debug) => 2,
        Some(Level::Info) => 3,
        Some(Level::Warn) => 4,
        Some(Level::Error) => 5,
        Some(Level::Fatal) => 6,
    });
    put_opt_str(out, e.thread.as_deref());
    put_opt_str(out, e.logger.as_deref());
    put_str(out, &e.message);
    put_str(out, &e.kind);
    let a = &e.attrs;
    for v in [
        a.session,
        a.zxid,
        a.epoch,
        a.server,
        a.leader,
        a.duration_ms,
        a.timeout_ms,
    ] {
        put_opt_u64(out, v);
    }
    put_opt_str(out, a.peer.as_deref());
    put_opt_str(out, a.path.as_deref());
    put_opt_str(out, a.state.as_deref());
    put_varint(out, e.paths.len() as u64);
    for p in &e.paths {
        put_str(out, p);
    }
    put_varint(out, e.replicas.len() as u64);
    for r in &e.replicas {
        put_str(out, r);
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.i)?;
        self.i += 1;
        Some(v)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.varint()?).ok()?;
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        let n = usize::try_from(self.varint()?).ok()?;
        if n == 0 {
            return Some(None);
        }
        Some(Some(String::from_utf8(self.bytes(n - 1)?.to_vec()).ok()?))
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.varint()?)),
            _ => None,
        }
    }
}

/// Steps over one encoded event (the layout [`decode`] reads), allocating nothing.
fn skip(c: &mut Cursor<'_>) -> Option<()> {
    fn str(c: &mut Cursor<'_>) -> Option<()> {
        let n = usize::try_from(c.varint()?).ok()?;
        c.bytes(n).map(|_| ())
    }
    fn opt_str(c: &mut Cursor<'_>) -> Option<()> {
        let n = usize::try_from(c.varint()?).ok()?;
        c.bytes(n.saturating_sub(1)).map(|_| ())
    }
    let tag = c.byte()?;
    if tag & !(HAS_TS | HAS_ENSEMBLE) != 0 {
        return None;
    }
    if tag & HAS_TS != 0 {
        c.bytes(8)?;
    }
    str(c)?; // node
    if tag & HAS_ENSEMBLE != 0 {
        str(c)?; // ensemble
    }
    c.opt_u64()?; // myid
    str(c)?; // source
    c.varint()?; // offset
    c.varint()?; // line
    c.byte()?; // level
    opt_str(c)?; // thread
    opt_str(c)?; // logger
    str(c)?; // message
    str(c)?; // kind
    for _ in 0..7 {
        c.opt_u64()?; // session zxid epoch server leader duration timeout
    }
    for _ in 0..3 {
        opt_str(c)?; // peer path state
    }
    for _ in 0..2 {
        // paths, replicas
        let n = c.varint()?;
        for _ in 0..n {
            str(c)?;
        }
    }
    Some(())
}

fn decode(c: &mut Cursor<'_>) -> Option<Event> {
    let tag = c.byte()?;
    if tag & !(HAS_TS | HAS_ENSEMBLE) != 0 {
        return None;
    }
    let ts = if tag & HAS_TS != 0 {
        Some(i64::from_le_bytes(c.bytes(8)?.try_into().ok()?))
    } else {
        None
    };
    let node: Arc<str> = Arc::from(c.string()?);
    let ensemble: Arc<str> = if tag & HAS_ENSEMBLE != 0 {
        Arc::from(c.string()?)
    } else {
        crate::event::default_ensemble()
    };
    let myid = c.opt_u64()?;
    let source: Arc<str> = Arc::from(c.string()?);
    let offset = c.varint()?;
    let line = c.varint()?;
    let level = match c.byte()? {
        0 => None,
        1 => Some(Level::Trace),
        2 => Some(Level::Debug),
        3 => Some(Level::Info),
        4 => Some(Level::Warn),
        5 => Some(Level::Error),
        6 => Some(Level::Fatal),
        _ => return None,
    };
    let thread = c.opt_string()?;
    let logger = c.opt_string()?;
    let message = c.string()?;
    let kind: Arc<str> = Arc::from(c.string()?);
    let attrs = Attrs {
        session: c.opt_u64()?,
        zxid: c.opt_u64()?,
        epoch: c.opt_u64()?,
        server: c.opt_u64()?,
        leader: c.opt_u64()?,
        duration_ms: c.opt_u64()?,
        timeout_ms: c.opt_u64()?,
        peer: c.opt_string()?,
        path: c.opt_string()?,
        state: c.opt_string()?,
    };
    let n = usize::try_from(c.varint()?).ok()?;
    let mut paths = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        paths.push(c.string()?);
    }
    let n = usize::try_from(c.varint()?).ok()?;
    let mut replicas = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        replicas.push(Arc::from(c.string()?));
    }
    Some(Event {
        ts,
        node,
        ensemble,
        myid,
        source,
        offset,
        line,
        level,
        thread: thread.map(Arc::from),
        logger: logger.map(Arc::from),
        message,
        kind,
        attrs,
        paths,
        replicas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(msg: String, ts: Option<i64>, session: Option<u64>) -> Event {
        Event {
            ts,
            node: Arc::from("zk1"),
            myid: Some(1),
            source: Arc::from("a/b.log"),
            offset: 42,
            line: 3,
            level: Some(Level::Warn),
            thread: Some("main".into()),
            logger: None,
            message: msg,
            kind: Arc::from("session.expired"),
            attrs: Attrs {
                session,
                path: Some("/x".into()),
                ..Attrs::default()
            },
            paths: vec!["/a".into(), "/b".into()],
            replicas: vec![Arc::from("zk1"), Arc::from("zk2")],
            ensemble: crate::event::default_ensemble(),
        }
    }

    proptest! {
        #[test]
        fn roundtrip(msg in ".*", ts in proptest::option::of(any::<i64>()), s in proptest::option::of(any::<u64>()), ens in proptest::option::of("[a-z]{1,8}")) {
            let mut e = ev(msg, ts, s);
            if let Some(name) = ens {
                e.ensemble = Arc::from(name.as_str());
            }
            // Two events back to back: skipping the first lands on the second.
            let mut b = Vec::new();
            encode(&e, &mut b);
            let first = b.len();
            encode(&e, &mut b);
            let mut c = Cursor { b: &b, i: 0 };
            prop_assert_eq!(skip(&mut c), Some(()));
            prop_assert_eq!(c.i, first);
            let d = decode(&mut c);
            prop_assert_eq!(d, Some(e));
        }
    }

    #[test]
    fn default_ensemble_events_are_written_as_before_ensembles() {
        // The layout older stores hold: tag 1 (a time), then the node.
        let e = ev("m".into(), Some(7), None);
        let mut b = Vec::new();
        encode(&e, &mut b);
        assert_eq!(b[0], 1);
        assert_eq!(&b[9..13], b"\x03zk1");
        let mut named = e.clone();
        named.ensemble = Arc::from("east");
        let mut b = Vec::new();
        encode(&named, &mut b);
        assert_eq!(b[0], 3);
        assert_eq!(&b[9..18], b"\x03zk1\x04east");
    }

    #[test]
    fn frames_survive_reopen_and_uncommitted_tail_is_cut() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("events");
        let mut w = StoreWriter::open(&p, 0).expect("open");
        let f1 = w
            .write_frame(
                &encode_frame(&[ev("a".into(), Some(1), None), ev("b".into(), None, Some(7))])
                    .expect("frame"),
            )
            .expect("write");
        w.sync().expect("sync");
        let committed = w.len();
        w.write_frame(&encode_frame(&[ev("c".into(), None, None)]).expect("frame"))
            .expect("write");
        drop(w);
        let w = StoreWriter::open(&p, committed).expect("reopen");
        assert_eq!(w.len(), committed);
        let mut r = StoreReader::open(&p).expect("reader");
        assert_eq!(r.get(address(f1, 1)).expect("get").message, "b");
        assert!(r.get(address(committed, 0)).is_err());
    }

    #[test]
    fn damaged_frame_is_reported_with_offset() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("events");
        let mut w = StoreWriter::open(&p, 0).expect("open");
        let off = w
            .write_frame(&encode_frame(&[ev("hello".into(), None, None)]).expect("frame"))
            .expect("write");
        drop(w);
        let mut bytes = std::fs::read(&p).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&p, bytes).expect("write");
        let err = StoreReader::open(&p)
            .expect("open")
            .get(address(off, 0))
            .expect_err("damaged");
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
