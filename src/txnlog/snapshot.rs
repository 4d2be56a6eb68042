//! The streaming reader of snapshot files (`snapshot.<zxid>`, after decompression).

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::jute::{java_utf8, Adler32, Cursor};
use super::log::hex_bytes;
use super::op::Acl;
use super::{read_full, Notice, NoticeKind};
use crate::error::{Error, Result};

/// `"ZKSN"` as a big-endian int (`FileSnap.SNAP_MAGIC`).
pub const SNAP_MAGIC: u32 = 0x5A4B_534E;
/// Largest string (path, ACL id) accepted in a snapshot.
const MAX_STRING: usize = 16 << 20;
/// Largest amount of data accepted after the first seal (digest, lastProcessedZxid).
const MAX_TAIL: usize = 1 << 16;

/// Most sessions of a snapshot's session table held by default (16 MB of them): the table is
/// read whole before the nodes, and a crafted file may hold any number. The rest are counted
/// and reported, the nodes are still read. Raise it with `--max-snapshot-sessions`
/// (`zklens snapshot dump`, `zklens ingest`, `zklens serve`) or `max_snapshot_sessions` in the
/// serve configuration.
pub const DEFAULT_MAX_SNAPSHOT_SESSIONS: usize = 1_000_000;

/// Most entries of a snapshot's ACL cache held (ZooKeeper keeps one per distinct ACL list: a
/// few in practice); the rest are read past, counted and reported.
pub const MAX_ACL_CACHE: usize = 65_536;

/// Most ACLs of one ACL cache entry held; the rest are read past, counted and reported.
pub const MAX_ACLS_PER_ENTRY: usize = 1024;

/// Most ephemeral znode paths held while a snapshot's nodes are matched to their owners (the
/// same bound as the txn log follower's); the rest are counted.
pub const MAX_SNAPSHOT_EPHEMERALS: usize = 1_000_000;

/// Most bytes of ephemeral znode paths held (each path counts 32 more for its keeping).
pub const MAX_SNAPSHOT_EPHEMERAL_BYTES: usize = 256 << 20;

/// The ephemeral znodes of a snapshot by owner session, gathered from its nodes within bounds:
/// owners are the sessions of the table held (and, when asked, as many owners the table does
/// not list), and at most [`MAX_SNAPSHOT_EPHEMERALS`] paths ([`MAX_SNAPSHOT_EPHEMERAL_BYTES`])
/// in all. What is not kept is counted.
#[derive(Debug, Default)]
pub struct EphemeralOwners {
    by_owner: BTreeMap<u64, Vec<String>>,
    table: HashSet<u64>,
    /// Owners not in the table that may still be kept.
    orphan_room: usize,
    paths: usize,
    bytes: usize,
    over: u64,
    unowned: u64,
}

impl EphemeralOwners {
    /// Gathers the ephemerals of `sessions` (the table held: its length bounds the owners),
    /// and of up to `orphans` owners the table does not list.
    pub fn new(sessions: &[SnapSession], orphans: usize) -> EphemeralOwners {
        EphemeralOwners {
            table: sessions.iter().map(|s| s.id).collect(),
            orphan_room: orphans,
            ..EphemeralOwners::default()
        }
    }

    /// Records ephemeral `path` of `owner`, when the bounds allow.
    pub fn add(&mut self, owner: u64, path: String) {
        let cost = path.len() + 32;
        let room = self.paths < MAX_SNAPSHOT_EPHEMERALS
            && self.bytes.saturating_add(cost) <= MAX_SNAPSHOT_EPHEMERAL_BYTES;
        let known = self.table.contains(&owner) || self.by_owner.contains_key(&owner);
        if !(known || self.orphan_room > 0) {
            self.unowned += 1;
            return;
        }
        if !room {
            self.over += 1;
            return;
        }
        if !known {
            self.orphan_room -= 1;
        }
        self.paths += 1;
        self.bytes += cost;
        self.by_owner.entry(owner).or_default().push(path);
    }

    /// How many ephemerals `owner` has kept.
    pub fn count(&self, owner: u64) -> usize {
        self.by_owner.get(&owner).map_or(0, Vec::len)
    }

    /// Takes the ephemerals of `owner` out.
    pub fn take(&mut self, owner: u64) -> Vec<String> {
        self.by_owner.remove(&owner).unwrap_or_default()
    }

    /// What is left, by owner (after the table's sessions took theirs: the orphans).
    pub fn into_rest(self) -> BTreeMap<u64, Vec<String>> {
        self.by_owner
    }

    /// Ephemerals not kept because of the bounds on paths.
    pub fn over(&self) -> u64 {
        self.over
    }

    /// Ephemerals not kept because their owner is not (a session not in the table held, past
    /// the orphan owners asked for).
    pub fn unowned(&self) -> u64 {
        self.unowned
    }
}

/// The 16-byte snapshot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Format version (2).
    pub version: i32,
    /// Database id (-1).
    pub dbid: i64,
}

/// A session in the snapshot's session table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapSession {
    /// Session id.
    pub id: u64,
    /// Session timeout, ms.
    pub timeout_ms: i32,
}

/// One entry of the snapshot's ACL cache (nodes refer to ACLs by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclCacheEntry {
    /// The index nodes use.
    pub index: i64,
    /// The ACL.
    pub acl: Vec<Acl>,
}

/// The persisted part of a znode's stat (`StatPersisted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatPersisted {
    /// Zxid of the create.
    pub czxid: u64,
    /// Zxid of the last data change.
    pub mzxid: u64,
    /// Create time, ms.
    pub ctime: i64,
    /// Last modification time, ms.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owner session of an ephemeral; 0 persistent; `0x8000000000000000` container; top byte
    /// `0xff` TTL node (see [`NodeKind`]).
    pub ephemeral_owner: u64,
    /// Zxid of the last change to the children.
    pub pzxid: u64,
}

/// What kind of node an `ephemeralOwner` value denotes (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Persistent node.
    Persistent,
    /// Ephemeral node owned by this session.
    Ephemeral(u64),
    /// Container node.
    Container,
    /// TTL node with this TTL (ms).
    Ttl(u64),
}

impl StatPersisted {
    /// The node kind encoded in `ephemeral_owner` (with extended types, as 3.5.3+ servers with
    /// `extendedTypesEnabled` write them).
    pub fn kind(&self) -> NodeKind {
        let o = self.ephemeral_owner;
        if o == 0 {
            NodeKind::Persistent
        } else if o == 0x8000_0000_0000_0000 {
            NodeKind::Container
        } else if o >> 56 == 0xff {
            NodeKind::Ttl(o & 0x00ff_ffff_ffff_ffff)
        } else {
            NodeKind::Ephemeral(o)
        }
    }
}

/// One znode of the snapshot (its data is skipped, only its length kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapNode {
    /// Offset of the node's path in the (decompressed) snapshot.
    pub offset: u64,
    /// The path (`""` for the root).
    pub path: String,
    /// Data length (-1 for null data).
    pub data_len: i32,
    /// Index into the ACL cache.
    pub acl_index: i64,
    /// The stat.
    pub stat: StatPersisted,
}

/// The digest section (3.6+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    /// The zxid the digest is for.
    pub zxid: u64,
    /// Digest version.
    pub version: i32,
    /// The data tree digest.
    pub digest: i64,
}

/// What follows the node list: seal(s), digest, lastProcessedZxid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotTrailer {
    /// Offset of the first seal.
    pub seal_offset: u64,
    /// The checksum stored in the first seal.
    pub checksum_stored: u64,
    /// Adler32 of everything before the first seal.
    pub checksum_computed: u32,
    /// Every seal present matched.
    pub seals_ok: bool,
    /// The digest section, when present.
    pub digest: Option<ZxidDigest>,
    /// The lastProcessedZxid section (3.9+), when present.
    pub last_processed_zxid: Option<u64>,
}

enum ReadErr {
    Eof,
    Io(io::Error),
    BadLength(i32),
}

impl From<io::Error> for ReadErr {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadErr::Eof
        } else {
            ReadErr::Io(e)
        }
    }
}

/// Counts and checksums every byte it reads.
#[derive(Debug)]
struct Hashing<R: Read> {
    inner: BufReader<R>,
    adler: Adler32,
    offset: u64,
}

impl<R: Read> Hashing<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), ReadErr> {
        let n = read_full(&mut self.inner, buf)?;
        self.adler.update(&buf[..n]);
        self.offset += n as u64;
        if n < buf.len() {
            return Err(ReadErr::Eof);
        }
        Ok(())
    }

    fn i32(&mut self) -> Result<i32, ReadErr> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(i32::from_be_bytes(b))
    }

    fn i64(&mut self) -> Result<i64, ReadErr> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(i64::from_be_bytes(b))
    }

    fn len(&mut self, max: usize) -> Result<Option<usize>, ReadErr> {
        let l = self.i32()?;
        if l == -1 {
            return Ok(None);
        }
        match usize::try_from(l) {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(ReadErr::BadLength(l)),
        }
    }

    fn string(&mut self) -> Result<String, ReadErr> {
        let Some(n) = self.len(MAX_STRING)? else {
            return Ok(String::new());
        };
        let mut v = Vec::with_capacity(n.min(4096));
        (&mut self.inner).take(n as u64).read_to_end(&mut v)?;
        self.adler.update(&v);
        self.offset += v.len() as u64;
        if v.len() < n {
            return Err(ReadErr::Eof);
        }
        Ok(java_utf8(&v))
    }

    /// Skips a buffer, returning its length (-1 for null).
    fn skip_buffer(&mut self) -> Result<i32, ReadErr> {
        let Some(mut n) = self.len(i32::MAX as usize)? else {
            return Ok(-1);
        };
        let total = n as i32;
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let k = n.min(scratch.len());
            self.exact(&mut scratch[..k])?;
            n -= k;
        }
        Ok(total)
    }

    /// An ACL list, keeping at most `keep` of its ACLs; returns it and how many were not kept.
    fn acl_vec(&mut self, keep: usize) -> Result<(Vec<Acl>, u64), ReadErr> {
        let n = self.i32()?;
        let mut v = Vec::new();
        let mut over = 0u64;
        for _ in 0..n.max(0) {
            let perms = self.i32()?;
            let scheme = self.string()?;
            let id = self.string()?;
            if v.len() < keep {
                v.push(Acl { perms, scheme, id });
            } else {
                over += 1;
            }
        }
        Ok((v, over))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Nodes,
    Done,
}

/// Streaming reader of one snapshot: the header, session table and ACL cache are read on
/// construction; the nodes are yielded one at a time (data skipped); after the `/` terminator the
/// seal checksum, digest and lastProcessedZxid sections are read into [`trailer`](Self::trailer).
///
/// Truncation or corruption after the header is reported through [`notices`](Self::notices)
/// (with the offset) and ends the iteration; then `trailer()` is `None` if the seal was not
/// reached. Iteration yields `Err` only for I/O errors.
///
/// Memory is bounded whatever the file holds: at most `max_sessions` sessions
/// ([`DEFAULT_MAX_SNAPSHOT_SESSIONS`]), [`MAX_ACL_CACHE`] ACL cache entries of
/// [`MAX_ACLS_PER_ENTRY`] ACLs are kept; the rest are read past, counted
/// ([`skipped_sessions`](Self::skipped_sessions)) and reported in one notice each (kind
/// [`NoticeKind::OverLimit`], at the offset of the first one not kept).
#[derive(Debug)]
pub struct SnapshotReader<R: Read> {
    src: Hashing<R>,
    path: PathBuf,
    header: SnapshotHeader,
    sessions: Vec<SnapSession>,
    max_sessions: usize,
    skipped_sessions: u64,
    acl_cache: Vec<AclCacheEntry>,
    notices: Vec<Notice>,
    state: State,
    trailer: Option<SnapshotTrailer>,
    nodes: u64,
}

/// Entries of a table read past without being kept: how many, and where the first one was.
#[derive(Debug, Default)]
struct Over {
    count: u64,
    at: u64,
}

impl Over {
    fn add(&mut self, at: u64, n: u64) {
        if n > 0 && self.count == 0 {
            self.at = at;
        }
        self.count += n;
    }
}

impl<R: Read> SnapshotReader<R> {
    /// Reads the header (failing, at offset 0, if this is not a snapshot), the session table and
    /// the ACL cache. The input must already be decompressed (see
    /// [`open_snapshot`](super::open_snapshot)). Holds at most
    /// [`DEFAULT_MAX_SNAPSHOT_SESSIONS`] sessions.
    pub fn new(reader: R, path: impl Into<PathBuf>) -> Result<Self> {
        Self::with_max_sessions(reader, path, DEFAULT_MAX_SNAPSHOT_SESSIONS)
    }

    /// [`new`](Self::new), holding at most `max_sessions` sessions of the session table (the
    /// rest are read past, counted and reported; the nodes are read as usual).
    pub fn with_max_sessions(
        reader: R,
        path: impl Into<PathBuf>,
        max_sessions: usize,
    ) -> Result<Self> {
        let path = path.into();
        let mut src = Hashing {
            inner: BufReader::with_capacity(1 << 16, reader),
            adler: Adler32::new(),
            offset: 0,
        };
        let mut h = [0u8; 16];
        let n = read_full(&mut src.inner, &mut h).map_err(|e| Error::io(&path, e))?;
        src.adler.update(&h[..n]);
        src.offset = n as u64;
        if n < 4 || h[..4] != SNAP_MAGIC.to_be_bytes() {
            return Err(Error::BadInput {
                path,
                offset: 0,
                reason: format!(
                    "not a ZooKeeper snapshot: magic {} (expected 5a4b534e \"ZKSN\")",
                    hex_bytes(&h[..n.min(4)])
                ),
            });
        }
        if n < 16 {
            return Err(Error::BadInput {
                path,
                offset: 0,
                reason: format!("snapshot header cut short: {n} of 16 bytes"),
            });
        }
        let mut c = Cursor::new(&h[4..]);
        let version = c.i32().unwrap_or(0);
        let dbid = c.i64().unwrap_or(0);
        let mut r = SnapshotReader {
            src,
            path,
            header: SnapshotHeader { version, dbid },
            sessions: Vec::new(),
            max_sessions,
            skipped_sessions: 0,
            acl_cache: Vec::new(),
            notices: Vec::new(),
            state: State::Nodes,
            trailer: None,
            nodes: 0,
        };
        if version != 2 {
            r.notice(
                4,
                NoticeKind::BadHeader,
                format!("snapshot version {version} (expected 2)"),
            );
        }
        let (mut sessions, mut entries, mut acls) =
            (Over::default(), Over::default(), Over::default());
        let res = r.read_tables(&mut sessions, &mut entries, &mut acls);
        r.skipped_sessions = sessions.count;
        // Reported before a failure in the tables, which comes after them in the file.
        if sessions.count > 0 {
            r.notice(
                sessions.at,
                NoticeKind::OverLimit,
                format!(
                    "{} of {} sessions in the session table are over the limit of {} and were skipped (not listed, their ephemerals not attributed); raise it with --max-snapshot-sessions (max_snapshot_sessions in the serve configuration)",
                    sessions.count,
                    sessions.count + r.sessions.len() as u64,
                    r.max_sessions
                ),
            );
        }
        if entries.count > 0 {
            r.notice(
                entries.at,
                NoticeKind::OverLimit,
                format!(
                    "{} ACL cache entries over the limit of {MAX_ACL_CACHE} were skipped",
                    entries.count
                ),
            );
        }
        if acls.count > 0 {
            r.notice(
                acls.at,
                NoticeKind::OverLimit,
                format!(
                    "{} ACLs over the limit of {MAX_ACLS_PER_ENTRY} per ACL cache entry were skipped",
                    acls.count
                ),
            );
        }
        if let Err(e) = res {
            r.fail(e, "in the session table or ACL cache")?;
        }
        Ok(r)
    }

    /// Reads the session table and the ACL cache, keeping what the limits allow and counting
    /// the rest in `sessions`, `entries` and `acls`.
    fn read_tables(
        &mut self,
        sessions: &mut Over,
        entries: &mut Over,
        acls: &mut Over,
    ) -> Result<(), ReadErr> {
        let n = self.src.i32()?;
        for _ in 0..n.max(0) {
            let at = self.src.offset;
            let id = self.src.i64()? as u64;
            let timeout_ms = self.src.i32()?;
            if self.sessions.len() < self.max_sessions {
                self.sessions.push(SnapSession { id, timeout_ms });
            } else {
                sessions.add(at, 1);
            }
        }
        let n = self.src.i32()?;
        for _ in 0..n.max(0) {
            let at = self.src.offset;
            let index = self.src.i64()?;
            let keep = self.acl_cache.len() < MAX_ACL_CACHE;
            let (acl, over) = self
                .src
                .acl_vec(if keep { MAX_ACLS_PER_ENTRY } else { 0 })?;
            if keep {
                acls.add(at, over);
                self.acl_cache.push(AclCacheEntry { index, acl });
            } else {
                entries.add(at, 1);
            }
        }
        Ok(())
    }

    fn notice(&mut self, offset: u64, kind: NoticeKind, message: String) {
        self.notices.push(Notice {
            path: self.path.clone(),
            offset,
            kind,
            message,
        });
    }

    /// Turns a read failure into a notice (truncation, bad length) or an error (I/O); stops.
    fn fail(&mut self, e: ReadErr, context: &str) -> Result<()> {
        self.state = State::Done;
        let at = self.src.offset;
        match e {
            ReadErr::Eof => {
                self.notice(
                    at,
                    NoticeKind::Truncated,
                    format!("snapshot truncated {context}"),
                );
                Ok(())
            }
            ReadErr::BadLength(l) => {
                self.notice(
                    at,
                    NoticeKind::BadLength,
                    format!("unreasonable length {l} {context}: reading stops here"),
                );
                Ok(())
            }
            ReadErr::Io(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// The header.
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// The file name used in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session table (id, timeout): its first `max_sessions` entries.
    pub fn sessions(&self) -> &[SnapSession] {
        &self.sessions
    }

    /// The most sessions held ([`with_max_sessions`](Self::with_max_sessions)).
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Sessions of the table read past and not held (over `max_sessions`).
    pub fn skipped_sessions(&self) -> u64 {
        self.skipped_sessions
    }

    /// The ACL cache.
    pub fn acl_cache(&self) -> &[AclCacheEntry] {
        &self.acl_cache
    }

    /// Nodes yielded so far.
    pub fn nodes_read(&self) -> u64 {
        self.nodes
    }

    /// Notices so far.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Takes the notices collected so far.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Seal, digest and lastProcessedZxid, once the node list was read to its terminator.
    pub fn trailer(&self) -> Option<&SnapshotTrailer> {
        self.trailer.as_ref()
    }

    fn read_node(&mut self) -> Result<Option<SnapNode>, ReadErr> {
        let offset = self.src.offset;
        let path = self.src.string()?;
        if path == "/" {
            return Ok(None);
        }
        let data_len = self.src.skip_buffer()?;
        let acl_index = self.src.i64()?;
        let s = &mut self.src;
        let stat = StatPersisted {
            czxid: s.i64()? as u64,
            mzxid: s.i64()? as u64,
            ctime: s.i64()?,
            mtime: s.i64()?,
            version: s.i32()?,
            cversion: s.i32()?,
            aversion: s.i32()?,
            ephemeral_owner: s.i64()? as u64,
            pzxid: s.i64()? as u64,
        };
        Ok(Some(SnapNode {
            offset,
            path,
            data_len,
            acl_index,
            stat,
        }))
    }

    fn finish(&mut self) -> Result<(), ReadErr> {
        let seal_offset = self.src.offset;
        let computed = self.src.adler.value();
        let stored = self.src.i64()? as u64;
        let slash = self.src.string()?;
        let mut seals_ok = stored == u64::from(computed);
        if !seals_ok {
            self.notice(
                seal_offset,
                NoticeKind::CrcMismatch,
                format!(
                    "snapshot seal checksum mismatch: stored {stored:#x}, computed {computed:#x}"
                ),
            );
        }
        if slash != "/" {
            seals_ok = false;
            self.notice(
                seal_offset + 8,
                NoticeKind::BadBody,
                format!("seal not followed by \"/\" (found {slash:?})"),
            );
        }
        let mut trailer = SnapshotTrailer {
            seal_offset,
            checksum_stored: stored,
            checksum_computed: computed,
            seals_ok,
            digest: None,
            last_processed_zxid: None,
        };
        // The optional sections are small: read what is left (bounded) and interpret it.
        let tail_start = self.src.offset;
        let base = self.src.adler;
        let mut tail = Vec::new();
        (&mut self.src.inner)
            .take(MAX_TAIL as u64 + 1)
            .read_to_end(&mut tail)?;
        self.src.offset += tail.len() as u64;
        self.src.adler.update(&tail);
        let mut pos = 0usize;
        let mut sections = 0;
        while pos < tail.len() && sections < 2 {
            let digest = if trailer.digest.is_none() && trailer.last_processed_zxid.is_none() {
                parse_digest_section(&tail, pos, base)
            } else {
                None
            };
            let last = if trailer.last_processed_zxid.is_none() {
                parse_zxid_section(&tail, pos, base)
            } else {
                None
            };
            // Prefer a layout whose seal checksum matches.
            let pick = match (digest, last) {
                (Some(d), _) if d.2 => Some((Some(d.0), None, d.1, true)),
                (_, Some(l)) if l.2 => Some((None, Some(l.0), l.1, true)),
                (Some(d), _) => Some((Some(d.0), None, d.1, false)),
                (_, Some(l)) => Some((None, Some(l.0), l.1, false)),
                _ => None,
            };
            let Some((d, l, end, ok)) = pick else {
                break;
            };
            if !ok {
                trailer.seals_ok = false;
                self.notice(
                    tail_start + pos as u64,
                    NoticeKind::CrcMismatch,
                    "checksum mismatch in the seal after the digest/lastProcessedZxid section"
                        .into(),
                );
            }
            if d.is_some() {
                trailer.digest = d;
            }
            if l.is_some() {
                trailer.last_processed_zxid = l;
            }
            pos = end;
            sections += 1;
        }
        if pos < tail.len() {
            let more = if tail.len() > MAX_TAIL {
                "more than "
            } else {
                ""
            };
            self.notice(
                tail_start + pos as u64,
                NoticeKind::TrailingBytes,
                format!(
                    "{more}{} byte(s) after the seal that are neither a digest nor a \
                     lastProcessedZxid section (truncated or foreign data)",
                    tail.len() - pos
                ),
            );
        }
        self.trailer = Some(trailer);
        Ok(())
    }
}

/// Parses a seal (`long checksum; ustring "/"`) at `c`; returns whether the checksum matched.
fn parse_seal(tail: &[u8], c: &mut Cursor<'_>, base: Adler32) -> Option<bool> {
    let at = c.pos();
    let stored = c.i64().ok()? as u64;
    if c.string().ok()? != "/" {
        return None;
    }
    let mut a = base;
    a.update(&tail[..at]);
    Some(stored == u64::from(a.value()))
}

fn parse_digest_section(
    tail: &[u8],
    pos: usize,
    base: Adler32,
) -> Option<(ZxidDigest, usize, bool)> {
    let mut c = Cursor::new(tail);
    c.set_pos(pos);
    let zxid = c.i64().ok()? as u64;
    let version = c.i32().ok()?;
    let digest = if version < 2 {
        i64::from_str_radix(&c.string().ok()?, 16).ok()?
    } else {
        c.i64().ok()?
    };
    let ok = parse_seal(tail, &mut c, base)?;
    Some((
        ZxidDigest {
            zxid,
            version,
            digest,
        },
        c.pos(),
        ok,
    ))
}

fn parse_zxid_section(tail: &[u8], pos: usize, base: Adler32) -> Option<(u64, usize, bool)> {
    let mut c = Cursor::new(tail);
    c.set_pos(pos);
    let zxid = c.i64().ok()? as u64;
    let ok = parse_seal(tail, &mut c, base)?;
    Some((zxid, c.pos(), ok))
}

impl<R: Read> Iterator for SnapshotReader<R> {
    type Item = Result<SnapNode>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        let start = self.src.offset;
        match self.read_node() {
            Ok(Some(node)) => {
                self.nodes += 1;
                Some(Ok(node))
            }
            Ok(None) => {
                self.state = State::Done;
                match self.finish() {
                    Ok(()) => None,
                    Err(e) => self
                        .fail(e, "in its seal (after the \"/\" terminator)")
                        .err()
                        .map(Err),
                }
            }
            Err(e) => {
                let ctx = format!(
                    "inside the node list, in the node starting at offset {start} \
                     ({} complete nodes, no \"/\" terminator reached)",
                    self.nodes
                );
                self.fail(e, &ctx).err().map(Err)
            }
        }
    }
}
