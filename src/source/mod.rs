//! Sources: where events come from. This module finds files under the paths a user gives,
//! recognises what each one is by its content (text log, gzip-compressed text, ZooKeeper
//! transaction log, snapshot, other binary), names the node each belongs to from the paths of
//! all files of the run and ZooKeeper's myid evidence ([`nodes`]), fingerprints files so
//! re-ingesting one does not duplicate it, and reads text sources line by line into the
//! [`parser`](crate::parser).

pub mod beneath;
pub mod follow;
pub mod lines;
pub mod nodes;
pub mod otlp;
pub mod policy;
pub mod tail;
pub mod text;
pub mod txn;
pub mod txnwatch;
pub mod vec;

pub use nodes::{NodeOrigin, NodeRule};
pub use vec::VecSource;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sink::Batch;

/// Marks an error that came back from a sink through a source's `emit`.
pub fn sink_error(e: Error) -> Error {
    match e {
        Error::Sink(_) => e,
        other => Error::Sink(Box::new(other)),
    }
}

/// What a [`Source::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// It read something and may have more right away: poll again.
    Busy,
    /// Nothing new for now (a followed source): poll again later.
    Idle,
    /// It has nothing more, ever (a finite source read to its end).
    Done,
}

/// Where events come from: a file read once, a file or URL followed, txn logs, snapshots, or
/// events in memory. A source reads from a checkpoint on (given when it is made) and hands out
/// [`Batch`]es whose checkpoint deltas chain: each starts where the previous one ended, so a
/// sink that applies them with the events commits exactly what was read.
pub trait Source: Send {
    /// The key its checkpoints are committed under (a path or a URL).
    fn key(&self) -> &str;

    /// Reads what is available now, handing batches to `emit`. An error from `emit` (the sink's)
    /// stops the source and is returned as [`Error::Sink`], apart from the source's own errors.
    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress>;

    /// The source is being stopped: hand out what it holds (an entry still being assembled).
    fn finish(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<()> {
        let _ = emit;
        Ok(())
    }

    /// How long a driver waits after an idle poll, given its usual interval.
    fn idle_wait(&self, poll: std::time::Duration) -> std::time::Duration {
        poll
    }

    /// Bytes written to the source and not handed out yet, when known (followed files).
    fn lag(&self) -> Option<u64> {
        None
    }
}

/// What a file contains, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Text (possibly gzip-compressed).
    Text {
        /// The file is gzip-compressed.
        gzip: bool,
    },
    /// A ZooKeeper transaction log (`ZKLG` magic), possibly gzip-compressed.
    TxnLog {
        /// The file is gzip-compressed.
        gzip: bool,
    },
    /// A ZooKeeper snapshot (`ZKSN` magic), possibly gzip-compressed.
    Snapshot {
        /// The file is gzip-compressed.
        gzip: bool,
    },
    /// Some other binary data (see [`sniff`] for what counts as binary).
    Binary {
        /// Offset of the evidence: 0 for a known magic number, else the first NUL or other
        /// non-text byte.
        offset: u64,
        /// Why it was judged binary.
        why: BinaryWhy,
    },
    /// An empty file.
    Empty,
}

/// Why a file was judged binary (see [`binary_evidence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryWhy {
    /// A known binary format's magic number (its name).
    Magic(&'static str),
    /// This share (percent) of the sniffed bytes is NUL.
    Nul(u8),
    /// This share (percent) of the sniffed non-NUL bytes is control characters or invalid
    /// UTF-8.
    Control(u8),
}

impl std::fmt::Display for BinaryWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BinaryWhy::Magic(name) => write!(f, "{name}"),
            BinaryWhy::Nul(p) => write!(f, "{p}% of its first bytes are NUL"),
            BinaryWhy::Control(p) => write!(
                f,
                "{p}% of its first non-NUL bytes are control characters or invalid UTF-8"
            ),
        }
    }
}

/// Small files of a ZooKeeper data directory that are not logs (`myid`, `currentEpoch`,
/// `acceptedEpoch`, `*.tmp` epoch files).
pub fn is_zookeeper_metadata(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(
        name,
        "myid" | "currentEpoch" | "acceptedEpoch" | "currentEpoch.tmp" | "acceptedEpoch.tmp"
    )
}

/// A file found under an ingest path.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its path.
    pub path: PathBuf,
    /// The node it belongs to.
    pub node: String,
    /// The ensemble its node belongs to: the nearest `ensemble=NAME` directory on its path, else
    /// the run's (`--ensemble`), else [`crate::event::DEFAULT_ENSEMBLE`].
    pub ensemble: Arc<str>,
    /// Where the node's name came from.
    pub node_origin: NodeOrigin,
    /// The ZooKeeper server id its content or data directory shows, when it shows one.
    pub myid: Option<u64>,
    /// What it contains.
    pub content: Content,
    /// Size on disk.
    pub size: u64,
}

const TXNLOG_MAGIC: &[u8; 4] = b"ZKLG";
const SNAP_MAGIC: &[u8; 4] = b"ZKSN";
/// Bytes of a file (after gzip decompression) its content is judged from.
const SNIFF: usize = 8192;
/// A file whose sniffed bytes are more than this share (percent) NUL is binary; fewer NULs are
/// damage inside a text log (a crash's zero-filled block, a stray byte): it is read as text and
/// the NULs are reported.
pub const MAX_TEXT_NUL_PERCENT: usize = 30;
/// A file whose other (non-NUL) sniffed bytes are more than this share (percent) control
/// characters or invalid UTF-8 is binary.
pub const MAX_TEXT_CONTROL_PERCENT: usize = 10;

/// Magic numbers of binary formats found beside logs, with their names. (`ZKLG`, `ZKSN` and
/// gzip are recognised before these.)
const BINARY_MAGIC: &[(&[u8], &str)] = &[
    (b"\x7fELF", "ELF executable"),
    (b"PK\x03\x04", "zip archive (or jar)"),
    (b"\xca\xfe\xba\xbe", "Java class file"),
    (
        b"\x28\xb5\x2f\xfd",
        "zstd-compressed data (decompress it first)",
    ),
    (
        b"\xff\x06\x00\x00sNaPpY",
        "snappy-framed data (decompress it first)",
    ),
    (
        b"\x82SNAPPY\x00",
        "snappy-java stream (decompress it first)",
    ),
    (b"BZh", "bzip2-compressed data (decompress it first)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (decompress it first)"),
    (b"\x89PNG", "PNG image"),
    (b"%PDF-", "PDF document"),
    (b"\xff\xfe", "UTF-16 text (convert it to UTF-8 first)"),
    (b"\xfe\xff", "UTF-16 text (convert it to UTF-8 first)"),
    (b"SQLite format 3\x00", "SQLite database"),
];

/// Why `head` (a file's first bytes) is not text, if it is not: a known magic number, a high
/// share of NUL bytes, or a high share of control characters and invalid UTF-8 among the rest.
/// A few NULs or odd bytes in text are damage, not a format: such a file is text.
pub fn binary_evidence(head: &[u8]) -> Option<(u64, BinaryWhy)> {
    if let Some((_, name)) = BINARY_MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some((0, BinaryWhy::Magic(name)));
    }
    let nuls = memchr::memchr_iter(0, head).count();
    let first_nul = memchr::memchr(0, head).map_or(0, |i| i as u64);
    if nuls * 100 > head.len() * MAX_TEXT_NUL_PERCENT {
        return Some((
            first_nul,
            BinaryWhy::Nul((nuls * 100 / head.len().max(1)) as u8),
        ));
    }
    let mut odd = 0usize;
    let mut first_odd: Option<usize> = None;
    let mut at = 0usize;
    for chunk in head.utf8_chunks() {
        for (i, b) in chunk.valid().bytes().enumerate() {
            let control = b < 0x20 && !matches!(b, 0 | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1b)
                || b == 0x7f;
            if control {
                odd += 1;
                first_odd.get_or_insert(at + i);
            }
        }
        at += chunk.valid().len();
        let bad = chunk.invalid().len();
        // A character cut by the end of the sample is not evidence.
        if bad > 0 && at + bad < head.len() {
            odd += bad;
            first_odd.get_or_insert(at);
        }
        at += bad;
    }
    let others = head.len() - nuls;
    if others == 0 || odd * 100 > others * MAX_TEXT_CONTROL_PERCENT {
        return Some((
            first_odd.map_or(first_nul, |i| i as u64),
            BinaryWhy::Control((odd * 100).checked_div(others).unwrap_or(100) as u8),
        ));
    }
    None
}

/// Opens a file for reading, transparently decompressing gzip.
pub fn open(path: &Path, gzip: bool) -> Result<Box<dyn BufRead + Send>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(BufReader::new(f)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, f))
    })
}

/// Judges a file's content from its first [`SNIFF`] bytes (decompressed, for gzip): a
/// transaction log or snapshot by its magic number, [`Content::Binary`] when
/// [`binary_evidence`] finds some, else text (a stray NUL byte does not make a log binary: it
/// is read, and the NUL reported).
pub fn sniff(path: &Path) -> Result<Content> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(SNIFF);
    (&mut f)
        .take(SNIFF as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Ok(Content::Empty);
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let mut inner = Vec::with_capacity(SNIFF);
        let mut d = flate2::read::MultiGzDecoder::new(BufReader::new(
            File::open(path).map_err(|e| Error::io(path, e))?,
        ))
        .take(SNIFF as u64);
        if let Err(e) = d.read_to_end(&mut inner) {
            if inner.is_empty() {
                return Err(Error::BadInput {
                    path: path.to_path_buf(),
                    offset: 0,
                    reason: format!("gzip data cannot be decompressed: {e}"),
                });
            }
        }
        head = inner;
    }
    Ok(if head.starts_with(TXNLOG_MAGIC) {
        Content::TxnLog { gzip }
    } else if head.starts_with(SNAP_MAGIC) {
        Content::Snapshot { gzip }
    } else if head.is_empty() {
        Content::Empty
    } else if let Some((offset, why)) = binary_evidence(&head) {
        Content::Binary { offset, why }
    } else {
        Content::Text { gzip }
    })
}

/// Finds every file under `paths` (directories are walked recursively, in name order; hidden
/// entries, ZooKeeper's metadata files and symbolic links to directories are skipped) and names
/// the node of each from all of them ([`nodes`]). Problems are returned beside the files found,
/// never instead of them.
pub fn discover(paths: &[PathBuf]) -> (Vec<SourceFile>, Vec<Error>) {
    discover_with(paths, &NodeRule::Auto)
}

/// [`discover`], naming nodes by `rule`. A file the rule cannot name is an error, not a file.
pub fn discover_with(paths: &[PathBuf], rule: &NodeRule) -> (Vec<SourceFile>, Vec<Error>) {
    discover_in(paths, rule, None)
}

/// [`discover_with`], in `ensemble` when a file's path names none (`ensemble=NAME`). Nodes are
/// named within each ensemble: two ensembles' `zk1` directories are both `zk1`.
pub fn discover_in(
    paths: &[PathBuf],
    rule: &NodeRule,
    ensemble: Option<&str>,
) -> (Vec<SourceFile>, Vec<Error>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut files, &mut errors),
            Ok(m) => add(p, m.len(), &mut files, &mut errors),
            Err(e) => errors.push(Error::io(p, e)),
        }
    }
    let run: Arc<str> = ensemble.map_or_else(crate::event::default_ensemble, Arc::from);
    // Each ensemble's files, in the order found, named among themselves.
    let mut parts: Vec<(Arc<str>, Vec<SourceFile>)> = Vec::new();
    for mut f in files {
        f.ensemble = ensemble_in_path(&f.path).map_or_else(|| run.clone(), Arc::from);
        match parts.iter_mut().find(|p| p.0 == f.ensemble) {
            Some(p) => p.1.push(f),
            None => parts.push((f.ensemble.clone(), vec![f])),
        }
    }
    let mut files = Vec::new();
    for (_, mut part) in parts {
        errors.extend(nodes::assign(&mut part, rule));
        files.extend(part);
    }
    (files, errors)
}

pub use crate::event::ensemble_in_path;

fn walk(dir: &Path, files: &mut Vec<SourceFile>, errors: &mut Vec<Error>) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(Error::io(dir, e));
            return;
        }
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with('.') || is_zookeeper_metadata(&path) {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, files, errors);
        } else if ft.is_file() {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            add(&path, size, files, errors);
        } else if ft.is_symlink() {
            if let Ok(m) = std::fs::metadata(&path) {
                if m.is_file() {
                    add(&path, m.len(), files, errors);
                }
            }
        }
    }
}

impl SourceFile {
    /// A file not named yet (its node is decided over the run's files, see [`nodes`]).
    pub fn unnamed(path: &Path, content: Content, size: u64) -> SourceFile {
        SourceFile {
            path: path.to_path_buf(),
            node: String::new(),
            ensemble: crate::event::default_ensemble(),
            node_origin: NodeOrigin::default(),
            myid: None,
            content,
            size,
        }
    }
}

fn add(path: &Path, size: u64, files: &mut Vec<SourceFile>, errors: &mut Vec<Error>) {
    match sniff(path) {
        Ok(content) => files.push(SourceFile::unnamed(path, content, size)),
        Err(e) => errors.push(e),
    }
}

/// A content fingerprint: FNV-1a 64 of the first bytes of a (decompressed) source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash.
    pub hash: u64,
    /// How many bytes it covers (fewer than [`FINGERPRINT_LEN`] for a short file).
    pub len: u64,
}

/// Bytes covered by a full fingerprint.
pub const FINGERPRINT_LEN: u64 = 1024;

/// Fingerprints the first `len` bytes (at most) of a source.
pub fn fingerprint(path: &Path, gzip: bool, len: u64) -> Result<Fingerprint> {
    let mut r = open(path, gzip)?;
    let mut buf = Vec::with_capacity(len as usize);
    (&mut r)
        .take(len)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(Fingerprint {
        hash: fnv1a(&buf),
        len: buf.len() as u64,
    })
}

pub use crate::event::fnv1a;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_recognises_content() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = |name: &str, b: &[u8]| {
            let p = d.path().join(name);
            std::fs::write(&p, b).expect("write");
            p
        };
        assert_eq!(
            sniff(&w("a", b"hello\n")).ok(),
            Some(Content::Text { gzip: false })
        );
        assert_eq!(sniff(&w("b", b"")).ok(), Some(Content::Empty));
        assert_eq!(
            sniff(&w("c", b"ZKLG\0\0\0\x02")).ok(),
            Some(Content::TxnLog { gzip: false })
        );
        assert!(matches!(
            sniff(&w("d", b"ab\0\0\0\0cd")).ok(),
            Some(Content::Binary { offset: 2, .. })
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"ZKSN\0\0\0\x02").expect("gz");
        let gz = gz.finish().expect("gz");
        assert_eq!(
            sniff(&w("e.gz", &gz)).ok(),
            Some(Content::Snapshot { gzip: true })
        );
        assert!(sniff(&w("f.gz", &[0x1f, 0x8b, 1, 2, 3])).is_err());
    }

    #[test]
    fn a_few_nuls_in_text_are_damage_not_binary() {
        let d = tempfile::tempdir().expect("tempdir");
        let line = b"2026-11-24 22:02:29,123 [myid:1] - INFO  [main:A@1] - hello\n";
        let mut text: Vec<u8> = line.repeat(100);
        text[10] = 0;
        // A crash's zero-filled block (1 KiB of the first 8 KiB) is damage too.
        text[2000..3024].fill(0);
        let p = d.path().join("zookeeper.log");
        std::fs::write(&p, &text).expect("write");
        assert_eq!(sniff(&p).ok(), Some(Content::Text { gzip: false }));
        assert_eq!(binary_evidence(&text), None);
        // Half NUL, or mostly control bytes: binary, with why.
        assert_eq!(
            binary_evidence(&[b'a', 0].repeat(100)),
            Some((1, BinaryWhy::Nul(50)))
        );
        assert!(matches!(
            binary_evidence(&[1u8, 2, 3, b'a'].repeat(100)),
            Some((0, BinaryWhy::Control(75)))
        ));
        assert_eq!(
            binary_evidence(b"\x7fELF\x02\x01"),
            Some((0, BinaryWhy::Magic("ELF executable")))
        );
        // Valid UTF-8 beyond ASCII is text; a character cut by the end of the sample too.
        assert_eq!(
            binary_evidence("caf\u{e9} \u{1F600}\n".repeat(50).as_bytes()),
            None
        );
        assert_eq!(binary_evidence(&"\u{e9}".as_bytes()[..1]), None);
    }
}
