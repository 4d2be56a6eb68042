//! ZooKeeper's binary persistence files: transaction logs (`log.<zxid>`) and snapshots
//! (`snapshot.<zxid>[.gz|.snappy]`), read as streams.
//!
//! * [`TxnLogReader`] yields [`TxnRecord`]s (header, decoded [`Op`] body for every opcode a log
//!   can hold, digest, file offset, checksum verdict) one at a time, stops at the preallocated
//!   zero area, and reports damage as [`Notice`]s naming the byte offset.
//! * [`SnapshotReader`] reads the session table and ACL cache, yields [`SnapNode`]s without
//!   keeping their data, and verifies the seal checksum(s) into a [`SnapshotTrailer`].
//! * [`format`] renders records exactly as ZooKeeper's `TxnLogToolkit -d` prints them, as JSON
//!   lines, and summarises snapshots in the spirit of `SnapshotFormatter`.
//!
//! The on-disk formats are described in `zookeeper-txnlog-format.md` (shared reference). Offsets
//! are positions in the decompressed stream when the input is compressed.

pub mod format;
pub mod jute;
pub mod log;
pub mod op;
pub mod snappy;
pub mod snapshot;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

pub use format::{
    jsonl, snapshot_summary, toolkit_dump, toolkit_eof_line, toolkit_header_line, toolkit_line,
    toolkit_record_text,
};
pub use log::{
    max_multi_ops, LogEnd, TxnDigest, TxnLogHeader, TxnLogReader, TxnRecord, DEFAULT_MAX_MULTI_OPS,
    DEFAULT_MAX_NOTICES, DEFAULT_MAX_RECORD_LEN, JUTE_MAXBUFFER,
};
pub use op::{err_name, op_name, Acl, Op, SubOp};
pub use snapshot::{
    AclCacheEntry, EphemeralOwners, NodeKind, SnapNode, SnapSession, SnapshotHeader,
    SnapshotReader, SnapshotTrailer, StatPersisted, ZxidDigest, DEFAULT_MAX_SNAPSHOT_SESSIONS,
    MAX_ACLS_PER_ENTRY, MAX_ACL_CACHE, MAX_SNAPSHOT_EPHEMERALS, MAX_SNAPSHOT_EPHEMERAL_BYTES,
};

/// What kind of problem a [`Notice`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// The last record is incomplete (crash while writing): reading stopped.
    TornRecord,
    /// A length field that cannot be right: reading stopped.
    BadLength,
    /// A stored checksum does not match the data (the record is still returned).
    CrcMismatch,
    /// A record body (or snapshot structure) that cannot be decoded.
    BadBody,
    /// Bytes left over after a complete body and digest.
    TrailingBytes,
    /// A header field with an unexpected value.
    BadHeader,
    /// The snapshot ends before its structure is complete: reading stopped.
    Truncated,
    /// A record longer than the reader's limit: skipped whole (not read into memory).
    TooLarge,
    /// Notices over the reader's limit: how many were counted and not kept.
    Suppressed,
    /// Entries of a table (a snapshot's sessions, its ACL cache) over the reader's limit: read
    /// past, counted, not kept.
    OverLimit,
}

/// A problem found in a file, with its position. Reported, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The file.
    pub path: PathBuf,
    /// Byte offset of the problem (in the decompressed stream).
    pub offset: u64,
    /// What kind of problem.
    pub kind: NoticeKind,
    /// Description.
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: at byte offset {}: {}",
            self.path.display(),
            self.offset,
            self.message
        )
    }
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Compression detected from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// None.
    Plain,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// snappy-java stream (`82 SNAPPY 00`), as ZooKeeper writes `.snappy` snapshots.
    Snappy,
}

impl Compression {
    /// Its name in messages (`gzip`, `zstd`, `snappy`, `plain`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
        }
    }
}

/// A boxed reader over decompressed bytes.
pub type DynRead = Box<dyn Read + Send>;

/// A buffered reader that counts the bytes its consumer has consumed: the position of a
/// decompressor in its compressed file.
#[derive(Debug)]
struct Counting<R> {
    inner: R,
    pos: Arc<AtomicU64>,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.pos.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt);
    }
}

/// Opens a file and wraps it in the decompressor its first bytes call for.
pub fn open_decompressed(path: &Path) -> Result<(DynRead, Compression)> {
    let (r, kind, _) = open_decompressed_counted(path)?;
    Ok((r, kind))
}

/// [`open_decompressed`], with the number of bytes of the file the decompressor has consumed
/// so far (its position in the compressed file: where a damaged stream is).
pub fn open_decompressed_counted(path: &Path) -> Result<(DynRead, Compression, Arc<AtomicU64>)> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut br = BufReader::with_capacity(1 << 16, f);
    let head = br.fill_buf().map_err(|e| Error::io(path, e))?;
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(&snappy::MAGIC) {
        Compression::Snappy
    } else {
        Compression::Plain
    };
    let pos = Arc::new(AtomicU64::new(0));
    let br = Counting {
        inner: br,
        pos: pos.clone(),
    };
    let r: DynRead = match kind {
        Compression::Plain => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => {
            Box::new(zstd::Decoder::with_buffer(br).map_err(|e| Error::io(path, e))?)
        }
        Compression::Snappy => Box::new(snappy::SnappyStreamReader::new(br)),
    };
    Ok((r, kind, pos))
}

/// Opens a transaction log file (plain, gzip or zstd compressed) for streaming, with the
/// default limits.
pub fn open_txnlog(path: &Path) -> Result<TxnLogReader<DynRead>> {
    open_txnlog_with(path, DEFAULT_MAX_RECORD_LEN)
}

/// [`open_txnlog`] with a record limit of `max_record_len` bytes (see
/// [`DEFAULT_MAX_RECORD_LEN`]).
pub fn open_txnlog_with(path: &Path, max_record_len: usize) -> Result<TxnLogReader<DynRead>> {
    let (r, kind, pos) = open_decompressed_counted(path)?;
    Ok(TxnLogReader::new(r, path)?
        .with_max_record_len(max_record_len)
        .with_compressed_position(kind, pos))
}

/// Opens a snapshot file (plain, `.gz`, `.snappy`, or zstd) for streaming, with the default
/// limits.
pub fn open_snapshot(path: &Path) -> Result<SnapshotReader<DynRead>> {
    open_snapshot_with(path, DEFAULT_MAX_SNAPSHOT_SESSIONS)
}

/// [`open_snapshot`] holding at most `max_sessions` sessions of its session table (see
/// [`DEFAULT_MAX_SNAPSHOT_SESSIONS`]).
pub fn open_snapshot_with(path: &Path, max_sessions: usize) -> Result<SnapshotReader<DynRead>> {
    let (r, _) = open_decompressed(path)?;
    SnapshotReader::with_max_sessions(r, path, max_sessions)
}
