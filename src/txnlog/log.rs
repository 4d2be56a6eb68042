//! The streaming reader of transaction log files (`log.<zxid>`).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::jute::{adler32, Cursor};
use super::op::{decode_top, Op};
use super::{read_full, Compression, Notice, NoticeKind};
use crate::error::{Error, Result};

/// `"ZKLG"` as a big-endian int (`FileTxnLog.TXNLOG_MAGIC`).
pub const TXNLOG_MAGIC: u32 = 0x5A4B_4C47;
/// The only transaction log format version (`FileTxnLog.VERSION`).
pub const TXNLOG_VERSION: i32 = 2;
/// Size of the file header.
pub const FILE_HEADER_LEN: u64 = 16;
/// Size of a `TxnHeader` at the start of every payload.
pub const TXN_HEADER_LEN: usize = 32;
/// ZooKeeper's default `jute.maxbuffer` (0xfffff bytes, just under 1 MiB): the largest request
/// (and so, give or take its header, transaction) a server accepts unless configured otherwise.
pub const JUTE_MAXBUFFER: usize = 0xfffff;
/// Default largest record payload read into memory: 2 MiB, twice ZooKeeper's default
/// `jute.maxbuffer` (headroom for the txn header, digest and `jute.maxbuffer.extrasize`).
/// A longer record whose end-of-record byte stands where its length says is skipped with a
/// notice (streamed past, never held) and reading goes on; a longer length that is not followed
/// by an end-of-record byte is corruption and ends reading. Raise it for an ensemble run with a
/// larger `jute.maxbuffer`: `--max-record-len` on `zklens txnlog dump` and `zklens ingest`,
/// `max_record_len` in the serve configuration.
pub const DEFAULT_MAX_RECORD_LEN: usize = 2 << 20;
/// The smallest multi sub-op ZooKeeper writes: its type, its buffer's length and an `ErrorTxn`'s
/// code (12 bytes).
pub const MIN_SUB_OP_LEN: usize = 12;
/// Default most sub-ops decoded in one `multi`: as many as ZooKeeper could write within its
/// default `jute.maxbuffer` (87 381). A multi declaring more is one malformed record with one
/// notice, with nothing built for its sub-ops. It grows with the record limit
/// ([`max_multi_ops`]).
pub const DEFAULT_MAX_MULTI_OPS: usize = (JUTE_MAXBUFFER + 1) / MIN_SUB_OP_LEN;
/// Default most notices one reader holds until they are taken: the rest are counted, and the
/// count is reported as one more notice (see [`TxnLogReader::take_notices`]), so memory stays
/// bounded however damaged the file.
pub const DEFAULT_MAX_NOTICES: usize = 1000;

/// The most sub-ops of a multi decoded under a record limit of `max_record_len` bytes:
/// [`DEFAULT_MAX_MULTI_OPS`] at the default limit or below, raised in proportion with a higher
/// one (an ensemble with a larger `jute.maxbuffer` can write larger multis).
pub fn max_multi_ops(max_record_len: usize) -> usize {
    let scaled =
        max_record_len as u128 * DEFAULT_MAX_MULTI_OPS as u128 / DEFAULT_MAX_RECORD_LEN as u128;
    usize::try_from(scaled)
        .unwrap_or(usize::MAX)
        .max(DEFAULT_MAX_MULTI_OPS)
}
/// The end-of-record marker byte.
pub const EOR: u8 = 0x42;

/// The 16-byte header of a transaction log file (`FileHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnLogHeader {
    /// Format version (2).
    pub version: i32,
    /// Database id (never assigned by ZooKeeper, so 0).
    pub dbid: i64,
}

/// The optional `TxnDigest` trailer of a payload (3.6+): the data tree digest after the txn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDigest {
    /// Digest algorithm version.
    pub version: i32,
    /// The tree digest.
    pub tree_digest: i64,
}

/// One transaction record.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnRecord {
    /// Byte offset of the record (its checksum field) in the (decompressed) file.
    pub offset: u64,
    /// Payload length (header + body + digest).
    pub len: u32,
    /// Session id (`TxnHeader.clientId`; 0 for some server-internal txns).
    pub session: u64,
    /// Client xid (per-session request counter).
    pub cxid: i32,
    /// Transaction id (high 32 bits: epoch).
    pub zxid: u64,
    /// Leader wall-clock time when the txn was prepared, ms since the Unix epoch.
    pub time_ms: i64,
    /// Opcode from the header.
    pub type_code: i32,
    /// The decoded body.
    pub op: Op,
    /// The stored checksum matched the Adler32 of the payload.
    pub crc_ok: bool,
    /// The stored checksum.
    pub crc_stored: u64,
    /// Adler32 of the payload.
    pub crc_computed: u32,
    /// The digest trailer, when present.
    pub digest: Option<TxnDigest>,
}

impl TxnRecord {
    /// The epoch (`zxid >> 32`).
    pub fn epoch(&self) -> u32 {
        (self.zxid >> 32) as u32
    }

    /// The counter within the epoch (low 32 bits of the zxid).
    pub fn counter(&self) -> u32 {
        self.zxid as u32
    }
}

/// Why reading a transaction log stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEnd {
    /// The file ended exactly after a record.
    Eof,
    /// A zero length: the preallocated (zero-filled) area after the last record.
    Preallocated,
    /// The last record is incomplete (cut inside, or not followed by the end-of-record byte).
    Torn,
    /// A record length that cannot be right (negative or larger than the limit).
    BadLength,
    /// An I/O error.
    IoError,
}

/// Streaming reader of one transaction log: reads the header on construction, then yields the
/// records one at a time (see the [`Iterator`] impl). Never holds more than one record.
///
/// Damage is reported through [`notices`](Self::notices), not by failing: a torn last record or
/// an impossible length ends the iteration (with a notice naming the offset); a checksum mismatch
/// yields the record with `crc_ok == false` (and a notice) and reading goes on; an undecodable
/// body yields an [`Op::Malformed`] record. Iteration yields `Err` only for I/O errors.
#[derive(Debug)]
pub struct TxnLogReader<R: Read> {
    inner: BufReader<R>,
    path: PathBuf,
    header: TxnLogHeader,
    offset: u64,
    end: Option<LogEnd>,
    notices: Vec<Notice>,
    max_record_len: usize,
    max_multi_ops: usize,
    max_notices: usize,
    /// Notices not kept (over `max_notices`): how many, and the first one's offset.
    suppressed: u64,
    suppressed_from: u64,
    /// The decompressor's position in the file, when the input is compressed.
    compressed: Option<(Compression, Arc<AtomicU64>)>,
    records: u64,
}

impl<R: Read> TxnLogReader<R> {
    /// Reads and checks the file header. `path` names the file in errors and notices. Fails
    /// (offset 0) when the input is not a version-2 ZooKeeper transaction log.
    pub fn new(reader: R, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut inner = BufReader::with_capacity(1 << 16, reader);
        let mut h = [0u8; 16];
        let n = read_full(&mut inner, &mut h).map_err(|e| Error::io(&path, e))?;
        let bad = |reason: String| Error::BadInput {
            path: path.clone(),
            offset: 0,
            reason,
        };
        if n < 4 || h[..4] != TXNLOG_MAGIC.to_be_bytes() {
            return Err(bad(format!(
                "not a ZooKeeper transaction log: magic {} (expected 5a4b4c47 \"ZKLG\")",
                hex_bytes(&h[..n.min(4)])
            )));
        }
        if n < 16 {
            return Err(bad(format!(
                "transaction log header cut short: {n} of 16 bytes"
            )));
        }
        let version = i32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if version != TXNLOG_VERSION {
            return Err(Error::BadInput {
                path: path.clone(),
                offset: 4,
                reason: format!("unsupported transaction log version {version} (expected 2)"),
            });
        }
        let mut d = [0u8; 8];
        d.copy_from_slice(&h[8..16]);
        Ok(TxnLogReader {
            inner,
            path,
            header: TxnLogHeader {
                version,
                dbid: i64::from_be_bytes(d),
            },
            offset: FILE_HEADER_LEN,
            end: None,
            notices: Vec::new(),
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            max_multi_ops: DEFAULT_MAX_MULTI_OPS,
            max_notices: DEFAULT_MAX_NOTICES,
            suppressed: 0,
            suppressed_from: 0,
            compressed: None,
            records: 0,
        })
    }

    /// Sets the largest payload length read (default [`DEFAULT_MAX_RECORD_LEN`]), and with it
    /// the most sub-ops decoded in a multi ([`max_multi_ops`]).
    pub fn with_max_record_len(mut self, max: usize) -> Self {
        self.max_record_len = max;
        self.max_multi_ops = max_multi_ops(max);
        self
    }

    /// Sets the most notices held until taken (default [`DEFAULT_MAX_NOTICES`]).
    pub fn with_max_notices(mut self, max: usize) -> Self {
        self.max_notices = max;
        self
    }

    /// Tells the reader the input is decompressed from a file, and where the decompressor stands
    /// in it (bytes of the file consumed), so a damaged stream is reported at both offsets.
    pub fn with_compressed_position(mut self, kind: Compression, pos: Arc<AtomicU64>) -> Self {
        if kind != Compression::Plain {
            self.compressed = Some((kind, pos));
        }
        self
    }

    /// The most sub-ops of one multi this reader decodes.
    pub fn max_multi_ops(&self) -> usize {
        self.max_multi_ops
    }

    /// The file header.
    pub fn header(&self) -> &TxnLogHeader {
        &self.header
    }

    /// The file name used in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of the next record (after the end: where reading stopped).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Records yielded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Why reading stopped, once it has.
    pub fn end(&self) -> Option<LogEnd> {
        self.end
    }

    /// Notices held so far (at most the limit; see [`notices_suppressed`](Self::notices_suppressed)).
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Notices past the limit since they were last taken: counted, not kept.
    pub fn notices_suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Takes the notices collected so far; when some were over the limit, a last notice says
    /// how many and from which offset. A caller that takes them as it goes sees every one.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        let mut v = std::mem::take(&mut self.notices);
        if self.suppressed > 0 {
            v.push(Notice {
                path: self.path.clone(),
                offset: self.suppressed_from,
                kind: NoticeKind::Suppressed,
                message: format!(
                    "{} more notice(s) from this offset on are not listed (limit {} per file)",
                    self.suppressed, self.max_notices
                ),
            });
            self.suppressed = 0;
        }
        v
    }

    fn notice(&mut self, offset: u64, kind: NoticeKind, message: String) {
        if self.notices.len() >= self.max_notices {
            if self.suppressed == 0 {
                self.suppressed_from = offset;
            }
            self.suppressed += 1;
            return;
        }
        self.notices.push(Notice {
            path: self.path.clone(),
            offset,
            kind,
            message,
        });
    }

    fn stop(&mut self, end: LogEnd) -> Option<Result<TxnRecord>> {
        self.end = Some(end);
        None
    }

    /// Streams past a record of `len` bytes, longer than the limit: when its end-of-record
    /// byte is where its length says, it is skipped with a notice (true: go on); otherwise the
    /// length is corruption and reading stops (false).
    fn skip_record(&mut self, off: u64, len: usize) -> std::io::Result<bool> {
        let want = len as u64 + 1;
        let got = std::io::copy(
            &mut (&mut self.inner).take(len as u64),
            &mut std::io::sink(),
        )?;
        let mut eor = [0u8; 1];
        let n = if got == len as u64 {
            read_full(&mut self.inner, &mut eor)?
        } else {
            0
        };
        if got + n as u64 == want && eor[0] == EOR {
            self.offset = off + 12 + want;
            self.notice(
                off,
                NoticeKind::TooLarge,
                format!(
                    "record of {len} bytes is over the limit of {} bytes (ZooKeeper's \
                     jute.maxbuffer is {JUTE_MAXBUFFER} by default): skipped; raise \
                     --max-record-len (max_record_len in the serve configuration) to read it",
                    self.max_record_len
                ),
            );
            return Ok(true);
        }
        self.notice(
            off,
            NoticeKind::BadLength,
            format!(
                "unreasonable record length {len} (limit {}; {}): reading stops here",
                self.max_record_len,
                if got + (n as u64) < want {
                    "the file ends before it"
                } else {
                    "no end-of-record byte after it"
                }
            ),
        );
        self.stop(LogEnd::BadLength);
        Ok(false)
    }

    /// An I/O error while reading the record at `off`. A decompressor's "unexpected end of
    /// file" (a cut `.gz` copy) is a torn record, not an error. Any other error (a damaged
    /// compressed stream, trailing garbage after it) is returned with the offset of the record
    /// in the decompressed stream and, for a compressed file, how far into the file the
    /// decompressor had read.
    fn read_error(&mut self, off: u64, e: std::io::Error) -> Option<Result<TxnRecord>> {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            self.notice(
                off,
                NoticeKind::TornRecord,
                format!("compressed stream ends inside the record: {e}"),
            );
            return self.stop(LogEnd::Torn);
        }
        self.end = Some(LogEnd::IoError);
        let reason = match &self.compressed {
            Some((kind, pos)) => format!(
                "{} stream damaged: {e} (offset {off} of the decompressed stream; the \
                 decompressor had read {} bytes of the compressed file); the {} record(s) \
                 before it were read",
                kind.name(),
                pos.load(Ordering::Relaxed),
                self.records
            ),
            None => format!(
                "read error: {e}; the {} record(s) before it were read",
                self.records
            ),
        };
        Some(Err(Error::BadInput {
            path: self.path.clone(),
            offset: off,
            reason,
        }))
    }

    fn read_record(&mut self) -> Option<Result<TxnRecord>> {
        loop {
            if self.end.is_some() {
                return None;
            }
            let off = self.offset;
            let mut fr = [0u8; 12];
            let n = match read_full(&mut self.inner, &mut fr) {
                Ok(n) => n,
                Err(e) => return self.read_error(off, e),
            };
            if n == 0 {
                return self.stop(LogEnd::Eof);
            }
            if n < 12 {
                self.notice(
                    off,
                    NoticeKind::TornRecord,
                    format!("partial last record: only {n} of its 12 framing bytes"),
                );
                return self.stop(LogEnd::Torn);
            }
            let mut c = [0u8; 8];
            c.copy_from_slice(&fr[..8]);
            let crc_stored = u64::from_be_bytes(c);
            let len = i32::from_be_bytes([fr[8], fr[9], fr[10], fr[11]]);
            if len == 0 {
                if crc_stored != 0 {
                    self.notice(
                        off,
                        NoticeKind::BadLength,
                        format!(
                            "record of length 0 with checksum {crc_stored:#x}: reading stops here"
                        ),
                    );
                }
                return self.stop(LogEnd::Preallocated);
            }
            let ulen = match usize::try_from(len) {
                Ok(l) if l <= self.max_record_len => l,
                Ok(l) => match self.skip_record(off, l) {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => return self.read_error(off, e),
                },
                Err(_) => {
                    self.notice(
                        off,
                        NoticeKind::BadLength,
                        format!("unreasonable record length {len}: reading stops here"),
                    );
                    return self.stop(LogEnd::BadLength);
                }
            };
            let mut payload = Vec::with_capacity(ulen.min(1 << 20));
            match (&mut self.inner)
                .take(ulen as u64 + 1)
                .read_to_end(&mut payload)
            {
                Ok(_) => {}
                Err(e) => return self.read_error(off, e),
            }
            if payload.len() < ulen {
                self.notice(
                    off,
                    NoticeKind::TornRecord,
                    format!(
                        "partial last record: payload of {ulen} bytes cut after {} bytes",
                        payload.len()
                    ),
                );
                return self.stop(LogEnd::Torn);
            }
            if payload.len() == ulen {
                self.notice(
                    off,
                    NoticeKind::TornRecord,
                    "partial last record: the file ends before its end-of-record byte".into(),
                );
                return self.stop(LogEnd::Torn);
            }
            let eor = payload.pop().unwrap_or(0);
            if eor != EOR {
                self.notice(
                    off + 12 + ulen as u64,
                    NoticeKind::TornRecord,
                    format!(
                        "last transaction was partial: byte {eor:#04x} where the end-of-record \
                         byte 0x42 belongs (record at offset {off})"
                    ),
                );
                return self.stop(LogEnd::Torn);
            }
            self.offset = off + 12 + ulen as u64 + 1;
            let crc_computed = adler32(&payload);
            let crc_ok = u64::from(crc_computed) == crc_stored;
            if payload.len() < TXN_HEADER_LEN {
                self.notice(
                    off,
                    NoticeKind::BadBody,
                    format!(
                        "record payload of {} bytes is shorter than a txn header (32): skipped",
                        payload.len()
                    ),
                );
                continue;
            }
            if !crc_ok {
                self.notice(
                    off,
                    NoticeKind::CrcMismatch,
                    format!(
                        "checksum mismatch: stored {crc_stored:#x}, computed {crc_computed:#x} \
                         (record kept, marked crc_ok=false)"
                    ),
                );
            }
            let rec = self.decode(off, ulen as u32, &payload, crc_ok, crc_stored, crc_computed);
            self.records += 1;
            return Some(Ok(rec));
        }
    }

    fn decode(
        &mut self,
        off: u64,
        len: u32,
        payload: &[u8],
        crc_ok: bool,
        crc_stored: u64,
        crc_computed: u32,
    ) -> TxnRecord {
        let mut c = Cursor::new(payload);
        // The header is 32 bytes and the payload has at least that many.
        let session = c.i64().unwrap_or(0) as u64;
        let cxid = c.i32().unwrap_or(0);
        let zxid = c.i64().unwrap_or(0) as u64;
        let time_ms = c.i64().unwrap_or(0);
        let type_code = c.i32().unwrap_or(0);
        let body_off = off + 12;
        let mut digest = None;
        let op = match decode_top(type_code, &mut c, self.max_multi_ops) {
            Ok(Op::Unknown { type_code }) => {
                self.notice(
                    off,
                    NoticeKind::BadBody,
                    format!("unsupported txn type {type_code} (zxid {zxid:#x})"),
                );
                Op::Unknown { type_code }
            }
            Ok(op) => {
                let rem = c.remaining();
                if rem >= 12 {
                    let version = c.i32().unwrap_or(0);
                    let tree_digest = c.i64().unwrap_or(0);
                    digest = Some(TxnDigest {
                        version,
                        tree_digest,
                    });
                }
                let rem = c.remaining();
                if rem > 0 {
                    self.notice(
                        body_off + c.pos() as u64,
                        NoticeKind::TrailingBytes,
                        format!(
                            "{rem} unexplained byte(s) at the end of the {} record (zxid {zxid:#x})",
                            op.name()
                        ),
                    );
                }
                op
            }
            Err(e) => {
                self.notice(
                    body_off + e.at() as u64,
                    NoticeKind::BadBody,
                    format!(
                        "cannot decode the {} body of zxid {zxid:#x}: {e}",
                        super::op::op_name(type_code)
                    ),
                );
                Op::Malformed {
                    type_code,
                    reason: e.to_string(),
                }
            }
        };
        if let Op::Multi { ops: Some(ops) } = &op {
            // One notice per record, however many of its sub-ops are undecodable.
            let mut bad = ops.iter().enumerate().filter_map(|(i, s)| match &s.op {
                Op::Malformed { reason, .. } => Some((i, reason)),
                _ => None,
            });
            if let Some((i, reason)) = bad.next() {
                let more = bad.count();
                let msg = if more == 0 {
                    format!("multi (zxid {zxid:#x}) sub-op {i} undecodable: {reason}")
                } else {
                    format!(
                        "multi (zxid {zxid:#x}) sub-op {i} undecodable: {reason} \
                         (and {more} more undecodable sub-op(s))"
                    )
                };
                self.notice(off, NoticeKind::BadBody, msg);
            }
        }
        TxnRecord {
            offset: off,
            len,
            session,
            cxid,
            zxid,
            time_ms,
            type_code,
            op,
            crc_ok,
            crc_stored,
            crc_computed,
            digest,
        }
    }
}

impl<R: Read> Iterator for TxnLogReader<R> {
    type Item = Result<TxnRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_record()
    }
}

pub(crate) fn hex_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "(none)".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
