//! The streaming reader of transaction log files (`log.<zxid>`).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::jute::{adler32, Cursor};
use super::op::{decode_top, Op};
use super::{read_full, Notice, NoticeKind};
use crate::error::{Error, Result};

/// `"ZKLG"` as a big-endian int (`FileTxnLog.TXNLOG_MAGIC`).
pub const TXNLOG_MAGIC: u32 = 0x5A4B_4C47;
/// The only transaction log format version (`FileTxnLog.VERSION`).
pub const TXNLOG_VERSION: i32 = 2;
/// Size of the file header.
pub const FILE_HEADER_LEN: u64 = 16;
/// Size of a `TxnHeader` at the start of every payload.
pub const TXN_HEADER_LEN: usize = 32;
/// Default largest payload accepted (a longer length is reported as corruption).
pub const DEFAULT_MAX_RECORD_LEN: usize = 128 << 20;
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
            records: 0,
        })
    }

    /// Sets the largest payload length accepted (default [`DEFAULT_MAX_RECORD_LEN`]).
    pub fn with_max_record_len(mut self, max: usize) -> Self {
        self.max_record_len = max;
        self
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

    /// Notices so far.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Takes the notices collected so far.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    fn notice(&mut self, offset: u64, kind: NoticeKind, message: String) {
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

    /// An I/O error while reading the record at `off`. A decompressor's "unexpected end of
    /// file" (a cut `.gz` copy) is a torn record, not an error.
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
        Some(Err(Error::io(&self.path, e)))
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
                _ => {
                    self.notice(
                        off,
                        NoticeKind::BadLength,
                        format!(
                            "unreasonable record length {len} (limit {}): reading stops here",
                            self.max_record_len
                        ),
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
        let op = match decode_top(type_code, &mut c) {
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
            for (i, s) in ops.iter().enumerate() {
                if let Op::Malformed { reason, .. } = &s.op {
                    let msg = format!("multi (zxid {zxid:#x}) sub-op {i} undecodable: {reason}");
                    self.notice(off, NoticeKind::BadBody, msg);
                }
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
