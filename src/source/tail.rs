//! Following a growing log file: complete lines as they are written, across rotation.
//!
//! A [`Tailer`] follows one path. Its [`Checkpoint`] names the file it is reading by identity
//! (device + inode) and by a fingerprint of its first bytes, and the offset of the first byte not
//! yet handed out, so a checkpoint committed with the index lets a restarted process continue
//! exactly where the index ends:
//!
//! - **rename rotation** (`x.log` → `x.log.1`, a new `x.log`): the old file stays open and is
//!   read until a poll finds it quiet (writers append a little after the rename), then the new
//!   one is started from byte 0; after a restart the old file is
//!   found again in the same directory by identity or fingerprint;
//! - **several rotations at once** (while the process was down, or busy): once a file is
//!   finished, the files rotated after it and before the one now at the path are read in turn,
//!   oldest first, each whole and once, before the path. They are the files next to it named
//!   like it with a rotation suffix (`x.log.2`, `x.log-20261124`), modified after the finished
//!   one (creation time breaks a tie where the file system keeps it); a compressed or binary
//!   one is reported and not read. The checkpoint names whichever file is being read, so a
//!   restart in the middle of the chain continues it;
//! - **copytruncate** (`x.log` copied to `x.log.1`, then truncated in place): detected when the
//!   file becomes shorter than the offset (or its first bytes change); the rest of the old content
//!   is read from the copy when one with the same fingerprint is found, then the truncated file is
//!   read from 0. Lines written between the copy and the truncation are lost — copytruncate
//!   itself loses them, no reader can see them — and so is the content of a file truncated
//!   before any of it was read (there are no first bytes to recognise its copy by);
//! - **partial last lines** are held until their newline arrives (a file that is rotated away is
//!   read to its very end, final partial line included);
//! - **deletion**: an open file is read to its end; the path is then watched until it reappears.
//!
//! Lines longer than `max_line` are cut there (the rest skipped) and reported.
//!
//! A tailer confined to a root ([`Tailer::beneath`]) opens every file (the followed one, at
//! every reopen, and a rotated copy next to it) with [`open_beneath`]: a path that leads out of
//! the root through a symlink is refused and reported once, and the path is watched on.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::beneath::{is_escape, open_beneath};
use super::{fnv1a, FINGERPRINT_LEN};
use crate::checkpoint::Checkpoint;
pub use crate::checkpoint::FileId;

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// Offset of its first byte in the file it came from.
    pub offset: u64,
    /// 1-based line number in that file.
    pub number: u64,
    /// The bytes, without the newline (cut at `max_line`).
    pub bytes: Vec<u8>,
    /// True when this line starts a file (the first line after a rotation or truncation), so
    /// the consumer can end any entry it was assembling.
    pub file_start: bool,
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct TailBatch {
    /// Complete lines, in order.
    pub lines: Vec<TailLine>,
    /// Things an operator should know (rotation, truncation, losses), with offsets.
    pub notices: Vec<String>,
}

#[derive(Debug)]
struct Open {
    file: File,
    id: FileId,
    fp: u64,
    fp_len: u64,
    /// Offset of the next byte to read from the file.
    read_to: u64,
    /// Offset of the first byte of `partial`.
    offset: u64,
    line: u64,
    partial: Vec<u8>,
    /// Bytes of an over-long line still being skipped.
    skipping: bool,
    fresh: bool,
}

/// Follows one path. See the module documentation.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    open: Option<Open>,
    /// A checkpoint to resume from, used when the path is first found.
    resume: Option<Checkpoint>,
    /// What the checkpoints handed out say besides the position (key, node, format, events).
    base: Checkpoint,
    max_line: usize,
    /// Every open stays under this directory (None: files are opened as named).
    root: Option<PathBuf>,
    /// The last refusal reported (reported again only when it changes).
    refused: Option<String>,
    /// Rotated files already reported as not readable (compressed, binary), not to report them
    /// at every poll.
    unreadable: Vec<FileId>,
}

/// Unreadable rotated files remembered (so as to be reported once each).
const MAX_UNREADABLE_KEPT: usize = 256;

/// Opens `p`, under `root` when there is one.
fn open_file(root: Option<&Path>, p: &Path) -> io::Result<File> {
    match root {
        Some(r) => open_beneath(r, p),
        None => File::open(p),
    }
}

/// FNV-1a of the first `len` bytes (at most [`FINGERPRINT_LEN`]); the read position is kept.
fn fingerprint_file(file: &mut File, len: u64) -> io::Result<(u64, u64)> {
    let pos = file.stream_position()?;
    let mut buf = Vec::with_capacity(len.min(FINGERPRINT_LEN) as usize);
    file.seek(SeekFrom::Start(0))?;
    file.by_ref()
        .take(len.min(FINGERPRINT_LEN))
        .read_to_end(&mut buf)?;
    file.seek(SeekFrom::Start(pos))?;
    Ok((fnv1a(&buf), buf.len() as u64))
}

impl Tailer {
    /// Follows `path`, continuing from `resume` when given (a checkpoint this process or an
    /// earlier one committed). The checkpoints it hands out keep `resume`'s key, node, format
    /// and event count (a fresh one is keyed by `path`).
    pub fn new(path: impl Into<PathBuf>, resume: Option<Checkpoint>, max_line: usize) -> Self {
        let path = path.into();
        let base = resume
            .clone()
            .unwrap_or_else(|| Checkpoint::start(path.display().to_string()));
        Tailer {
            path,
            open: None,
            resume,
            base,
            max_line: max_line.max(1),
            root: None,
            refused: None,
            unreadable: Vec::new(),
        }
    }

    /// Confines every open to `root` (see the module documentation).
    pub fn beneath(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where everything handed out so far ends.
    pub fn checkpoint(&self) -> Checkpoint {
        match &self.open {
            Some(o) => Checkpoint {
                file: Some(o.id),
                fp: o.fp,
                fp_len: o.fp_len,
                offset: o.offset,
                line: o.line,
                ..self.base.clone()
            },
            None => self.resume.clone().unwrap_or_else(|| Checkpoint {
                file: None,
                fp: 0,
                fp_len: 0,
                offset: 0,
                line: 0,
                ..self.base.clone()
            }),
        }
    }

    /// Bytes written to the followed file that are not handed out yet (the lag), when known
    /// (not while a file rotated away is being finished).
    pub fn lag(&self) -> Option<u64> {
        let o = self.open.as_ref()?;
        let m = fs::metadata(&self.path).ok()?;
        (FileId::of(&m) == o.id).then(|| m.len().saturating_sub(o.offset))
    }

    /// Reads what is new, up to about `budget` bytes (so one busy file cannot starve the rest;
    /// call again to continue).
    pub fn poll(&mut self, budget: usize) -> io::Result<TailBatch> {
        let mut out = TailBatch::default();
        let meta = match fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if self.open.is_none() {
            let Some(meta) = meta else {
                return Ok(out);
            };
            self.start(&meta, &mut out, budget)?;
            return Ok(out);
        }
        let Some(o) = self.open.as_mut() else {
            return Ok(out);
        };
        let now = meta.as_ref().map(FileId::of);
        if now != Some(o.id) {
            // Renamed away or deleted: whatever was written to the old file is still readable
            // through our handle. Writers often keep appending to it for a moment after the
            // rename, so it is read until a poll finds nothing new; then its last partial line
            // is handed out and the new file is followed.
            let before = o.read_to;
            let more = read_lines(o, self.max_line, budget, false, &mut out)?;
            if more || o.read_to > before {
                return Ok(out);
            }
            read_lines(o, self.max_line, budget, true, &mut out)?;
            // Rotated again before the file now at the path (or the path is gone): the files
            // rotated after this one are read first, oldest first.
            let current = meta.as_ref().map(FileId::of);
            let done_meta = o.file.metadata()?;
            let (done_id, end) = (o.id, o.read_to);
            if let Some((p, file, id)) = self.next_rotated(&done_meta, done_id, current, &mut out) {
                self.open = Some(self.opened(file, id)?);
                out.notices.push(format!(
                    "{}: rotated more than once; read the file before to byte {end}, now reading {} (rotated after it) from its start",
                    self.path.display(),
                    p.display()
                ));
                self.resume = None;
                if let Some(o) = self.open.as_mut() {
                    read_lines(o, self.max_line, budget, false, &mut out)?;
                }
                return Ok(out);
            }
            let meta = match meta {
                Some(m) => m,
                None => {
                    // Deleted, nothing new yet: keep the finished handle until the path returns.
                    return Ok(out);
                }
            };
            out.notices.push(format!(
                "{}: rotated (a new file replaced it after byte {end}); following the new file from its start",
                self.path.display(),
            ));
            self.open = None;
            self.resume = None;
            self.start(&meta, &mut out, budget)?;
            return Ok(out);
        }
        let len = meta.as_ref().map_or(0, Metadata::len);
        // Shorter than what was read, or different first bytes: truncated (and maybe regrown).
        let replaced =
            len < o.read_to || (o.fp_len > 0 && fingerprint_file(&mut o.file, o.fp_len)?.0 != o.fp);
        if replaced {
            self.truncated(len, &mut out, budget)?;
            return Ok(out);
        }
        read_lines(o, self.max_line, budget, false, &mut out)?;
        // The fingerprint grows with the file until it covers FINGERPRINT_LEN bytes.
        if o.fp_len < FINGERPRINT_LEN && o.read_to > o.fp_len {
            let (fp, n) = fingerprint_file(&mut o.file, o.read_to)?;
            o.fp = fp;
            o.fp_len = n;
        }
        Ok(out)
    }

    /// The file shrank or its first bytes changed (copytruncate, or rewritten in place).
    fn truncated(&mut self, len: u64, out: &mut TailBatch, budget: usize) -> io::Result<()> {
        let Some(o) = self.open.take() else {
            return Ok(());
        };
        // copytruncate leaves a copy with our first bytes next to the file: read its rest.
        let copy = find_copy(
            self.root.as_deref(),
            &self.path,
            o.id,
            None,
            o.fp,
            o.fp_len,
            o.read_to,
        );
        match copy {
            Some((p, file, id)) => {
                let mut c = Open {
                    file,
                    id,
                    fp: o.fp,
                    fp_len: o.fp_len,
                    read_to: o.read_to,
                    offset: o.offset,
                    line: o.line,
                    partial: o.partial,
                    skipping: o.skipping,
                    fresh: false,
                };
                c.file.seek(SeekFrom::Start(c.read_to))?;
                out.notices.push(format!(
                    "{}: truncated in place (copytruncate) at byte {}; reading the rest of the old content from its copy {}; lines written between the copy and the truncation are lost",
                    self.path.display(),
                    o.read_to,
                    p.display(),
                ));
                // Read like a file rotated away: to its end, then what was rotated after it,
                // then the file at the path from its start.
                read_lines(&mut c, self.max_line, budget, false, out)?;
                self.resume = None;
                self.open = Some(c);
                return Ok(());
            }
            None => out.notices.push(format!(
                "{}: truncated or rewritten at byte {} (now {} bytes) and no copy found; lines written after byte {} and before the truncation are lost; reading from the start",
                self.path.display(),
                o.read_to,
                len,
                o.read_to
            )),
        }
        self.resume = None;
        let meta = fs::metadata(&self.path)?;
        self.start(&meta, out, budget)
    }

    /// Opens the file now at the path: from the resume checkpoint when it is the same file, else
    /// from 0 (after reading the rest of the checkpoint's file if it was rotated away).
    fn start(&mut self, _meta: &Metadata, out: &mut TailBatch, budget: usize) -> io::Result<()> {
        let file = match open_file(self.root.as_deref(), &self.path) {
            Ok(f) => f,
            Err(e) if is_escape(&e) => {
                // Replaced by a symlink out of the root (or a directory on the way was): not
                // read. Reported once; the path is watched on.
                let msg = e.to_string();
                if self.refused.as_deref() != Some(msg.as_str()) {
                    out.notices.push(msg.clone());
                    self.refused = Some(msg);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.refused = None;
        // The identity and length of what was opened, not of what the path names now.
        let meta = file.metadata()?;
        let id = FileId::of(&meta);
        let len = meta.len();
        let mut o = self.opened(file, id)?;
        if let Some(cp) = self.resume.take() {
            let same_content = cp.fp_len <= len && {
                let (h, _) = fingerprint_file(&mut o.file, cp.fp_len)?;
                h == cp.fp
            };
            if same_content && cp.offset <= len && (cp.file.is_none() || cp.file == Some(id)) {
                o.read_to = cp.offset;
                o.offset = cp.offset;
                o.line = cp.line;
                o.fresh = false;
            } else if cp.file.is_some() {
                // The checkpoint's file was rotated away (or copied and truncated) while we were
                // not running: read its rest first.
                match find_copy(
                    self.root.as_deref(),
                    &self.path,
                    id,
                    cp.file,
                    cp.fp,
                    cp.fp_len,
                    cp.offset,
                ) {
                    Some((p, file, rid)) => {
                        let mut c = Open {
                            file,
                            id: rid,
                            fp: cp.fp,
                            fp_len: cp.fp_len,
                            read_to: cp.offset,
                            offset: cp.offset,
                            line: cp.line,
                            partial: Vec::new(),
                            skipping: false,
                            fresh: false,
                        };
                        c.file.seek(SeekFrom::Start(cp.offset))?;
                        out.notices.push(format!(
                            "{}: rotated while not followed; reading the rest of the previous file from {} (from byte {}), then what was rotated after it",
                            self.path.display(),
                            p.display(),
                            cp.offset,
                        ));
                        // Read like a file rotated away: to its end, then the files rotated
                        // after it, then the file at the path from its start.
                        read_lines(&mut c, self.max_line, budget, false, out)?;
                        self.open = Some(c);
                        return Ok(());
                    }
                    None => out.notices.push(format!(
                        "{}: the file read up to byte {} is gone (rotated away and not found next to it, or truncated); reading the current file from its start",
                        self.path.display(),
                        cp.offset
                    )),
                }
            }
        }
        o.file.seek(SeekFrom::Start(o.read_to))?;
        read_lines(&mut o, self.max_line, budget, false, out)?;
        self.open = Some(o);
        Ok(())
    }
}

impl Tailer {
    /// `file` (identity `id`) as the file being read, from its start.
    fn opened(&self, mut file: File, id: FileId) -> io::Result<Open> {
        let len = file.metadata()?.len();
        let (fp, fp_len) = fingerprint_file(&mut file, len)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Open {
            file,
            id,
            fp,
            fp_len,
            read_to: 0,
            offset: 0,
            line: 0,
            partial: Vec::new(),
            skipping: false,
            fresh: true,
        })
    }

    /// The oldest file rotated after the finished one (`done`, identity `done_id`) that is not
    /// the file at the path now (`current`): next to the path, named like it with a rotation
    /// suffix, modified after it (see [`rotated_after`]). A compressed or binary one is
    /// reported once and passed over.
    fn next_rotated(
        &mut self,
        done: &Metadata,
        done_id: FileId,
        current: Option<FileId>,
        out: &mut TailBatch,
    ) -> Option<(PathBuf, File, FileId)> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty())?;
        let name = self.path.file_name()?.to_string_lossy().to_string();
        let mut cands: Vec<(PathBuf, Metadata)> = fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| is_rotation_of(&e.file_name().to_string_lossy(), &name))
            .filter_map(|e| {
                let p = e.path();
                let m = fs::metadata(&p).ok()?;
                let id = FileId::of(&m);
                (m.is_file()
                    && m.len() > 0
                    && id != done_id
                    && Some(id) != current
                    && rotated_after(&m, done))
                .then_some((p, m))
            })
            .collect();
        cands.sort_by_key(|(_, m)| (m.modified().ok(), m.created().ok()));
        for (p, m) in cands {
            let id = FileId::of(&m);
            let Ok(mut f) = open_file(self.root.as_deref(), &p) else {
                continue;
            };
            // What was opened must be what was listed (not swapped meanwhile).
            if f.metadata().map(|o| FileId::of(&o)).ok() != Some(id) {
                continue;
            }
            let mut head = Vec::with_capacity(512);
            if (&mut f).take(512).read_to_end(&mut head).is_err() {
                continue;
            }
            let why = if head.starts_with(&[0x1f, 0x8b]) {
                Some("gzip-compressed".to_string())
            } else {
                super::binary_evidence(&head).map(|(_, w)| w.to_string())
            };
            if let Some(why) = why {
                if !self.unreadable.contains(&id) {
                    if self.unreadable.len() >= MAX_UNREADABLE_KEPT {
                        self.unreadable.remove(0);
                    }
                    self.unreadable.push(id);
                    out.notices.push(format!(
                        "{}: rotated after the file being read, but not text ({why}): not read; lines of it not read before are lost",
                        p.display()
                    ));
                }
                continue;
            }
            return Some((p, f, id));
        }
        None
    }
}

/// Whether `name` is `base` with a rotation suffix: a separator (`.`, `-`, `_`), then digits
/// and separators only (`x.log.1`, `x.log-20261124`, `x.log.2026-11-24.0`), optionally a
/// compression extension (`.gz`, `.bz2`, `.xz`, `.zst`: such files are found to be passed over
/// with a notice).
fn is_rotation_of(name: &str, base: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    let rest = [".gz", ".bz2", ".xz", ".zst"]
        .iter()
        .find_map(|ext| rest.strip_suffix(ext))
        .unwrap_or(rest);
    let mut chars = rest.chars();
    matches!(chars.next(), Some('.' | '-' | '_'))
        && rest.chars().any(|c| c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
}

/// Whether the file `m` describes was rotated after the one `done` describes: modified later,
/// or at the same time and created later (where the file system keeps creation times). Equal
/// times otherwise are not "after": a file read before is never read twice.
fn rotated_after(m: &Metadata, done: &Metadata) -> bool {
    match (m.modified(), done.modified()) {
        (Ok(a), Ok(b)) if a != b => a > b,
        (Ok(_), Ok(_)) => matches!((m.created(), done.created()), (Ok(a), Ok(b)) if a > b),
        _ => false,
    }
}

/// A file in the same directory as `path`, named like it (not `not_id`), whose first `fp_len`
/// bytes hash to `fp` and that holds at least `min_len` bytes: a rotated or copied predecessor.
/// One with identity `want_id` (a file renamed away keeps its inode) is preferred.
fn find_copy(
    root: Option<&Path>,
    path: &Path,
    not_id: FileId,
    want_id: Option<FileId>,
    fp: u64,
    fp_len: u64,
    min_len: u64,
) -> Option<(PathBuf, File, FileId)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let name = path.file_name()?.to_string_lossy().to_string();
    let mut cands: Vec<(PathBuf, Metadata)> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
        .filter_map(|e| {
            let p = e.path();
            let m = fs::metadata(&p).ok()?;
            (m.is_file() && FileId::of(&m) != not_id && m.len() >= min_len).then_some((p, m))
        })
        .collect();
    // The renamed file itself, then the most recently modified (x.log.1 before x.log.2).
    cands.sort_by_key(|(_, m)| {
        (
            want_id != Some(FileId::of(m)),
            std::cmp::Reverse(m.modified().ok()),
        )
    });
    for (p, m) in cands {
        let Ok(mut f) = open_file(root, &p) else {
            continue;
        };
        match fingerprint_file(&mut f, fp_len) {
            Ok((h, n)) if h == fp && n == fp_len => return Some((p, f, FileId::of(&m))),
            _ => {}
        }
    }
    None
}

/// Reads from `o.read_to` to the end of the file (or about `budget` bytes), handing out complete
/// lines; with `to_end`, a final partial line is handed out too (the file is finished). Returns
/// true when it stopped because of the budget.
fn read_lines(
    o: &mut Open,
    max_line: usize,
    budget: usize,
    to_end: bool,
    out: &mut TailBatch,
) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0usize;
    loop {
        if read >= budget {
            return Ok(true);
        }
        let n = match o.file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        read += n;
        let mut at = o.read_to; // file offset of chunk[0]
        o.read_to += n as u64;
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    take(o, &chunk[..i], max_line, out);
                    at += i as u64 + 1;
                    emit(o, at, out);
                    chunk = &chunk[i + 1..];
                }
                None => {
                    take(o, chunk, max_line, out);
                    chunk = &[];
                }
            }
        }
    }
    if to_end && (!o.partial.is_empty() || o.skipping) {
        let end = o.read_to;
        emit(o, end, out);
    }
    Ok(false)
}

/// Adds bytes to the line being assembled, cutting it at `max_line`.
fn take(o: &mut Open, b: &[u8], max_line: usize, out: &mut TailBatch) {
    if o.skipping {
        return;
    }
    let room = max_line.saturating_sub(o.partial.len());
    if b.len() > room {
        o.partial.extend_from_slice(&b[..room]);
        o.skipping = true;
        out.notices.push(format!(
            "line at byte {} is longer than {max_line} bytes; only the first {max_line} are indexed",
            o.offset
        ));
    } else {
        o.partial.extend_from_slice(b);
    }
}

/// Hands out the assembled line, which starts at `o.offset`; the next one starts at `next`.
fn emit(o: &mut Open, next: u64, out: &mut TailBatch) {
    o.line += 1;
    out.lines.push(TailLine {
        offset: o.offset,
        number: o.line,
        bytes: std::mem::take(&mut o.partial),
        file_start: std::mem::take(&mut o.fresh),
    });
    o.skipping = false;
    o.offset = next;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("open for append");
        f.write_all(s.as_bytes()).expect("append");
    }

    fn texts(b: &TailBatch) -> Vec<String> {
        b.lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    /// Polls until two polls in a row hand out nothing and leave the tailer where it stood
    /// (a file rotated away is finished by the first poll that finds it quiet, so a chain of
    /// them takes polls); everything handed out.
    fn drain(t: &mut Tailer) -> TailBatch {
        let mut all = TailBatch::default();
        let mut idle = 0;
        for _ in 0..1000 {
            let before = t.checkpoint();
            let b = t.poll(usize::MAX).expect("poll");
            idle = if b.lines.is_empty() && t.checkpoint() == before {
                idle + 1
            } else {
                0
            };
            all.lines.extend(b.lines);
            all.notices.extend(b.notices);
            if idle == 2 {
                return all;
            }
        }
        panic!("the tailer never stood still");
    }

    /// Sets `p`'s modification time to `t` seconds after 2001-09-09 (a logical clock: the file
    /// system's coarse clock gives writes microseconds apart the same time, which real rotations,
    /// seconds apart at least, do not have).
    fn stamp(p: &Path, t: u64) {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000 + t);
        fs::OpenOptions::new()
            .append(true)
            .open(p)
            .and_then(|f| f.set_modified(at))
            .expect("set mtime");
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.log");
        append(&p, "one\ntw");
        let mut t = Tailer::new(&p, None, 1 << 20);
        assert_eq!(texts(&t.poll(usize::MAX).expect("poll")), ["one"]);
        assert_eq!(t.checkpoint().offset, 4);
        append(&p, "o\nthree\n");
        let b = t.poll(usize::MAX).expect("poll");
        assert_eq!(texts(&b), ["two", "three"]);
        assert_eq!(b.lines[0].offset, 4);
        assert_eq!(b.lines[1].number, 3);
        assert_eq!(t.checkpoint().offset, 14);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_first() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.log");
        append(&p, "1\n");
        let mut t = Tailer::new(&p, None, 1 << 20);
        assert_eq!(texts(&t.poll(usize::MAX).expect("poll")), ["1"]);
        append(&p, "2\n3-no-newline");
        fs::rename(&p, d.path().join("a.log.1")).expect("rename");
        append(&p, "4\n");
        // The old file grew since the last poll: read it, and wait for it to go quiet.
        assert_eq!(texts(&t.poll(usize::MAX).expect("poll")), ["2"]);
        let b = t.poll(usize::MAX).expect("poll");
        assert_eq!(texts(&b), ["3-no-newline", "4"]);
        assert!(b.lines[1].file_start);
        assert_eq!(b.lines[1].offset, 0);
        assert!(b.notices.iter().any(|n| n.contains("rotated")));
    }

    #[test]
    fn copytruncate_reads_the_rest_from_the_copy() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.log");
        append(&p, "first line of the file\n");
        let mut t = Tailer::new(&p, None, 1 << 20);
        t.poll(usize::MAX).expect("poll");
        append(&p, "written before the copy\n");
        fs::copy(&p, d.path().join("a.log.1")).expect("copy");
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&p, "after\n");
        let b = drain(&mut t);
        assert_eq!(texts(&b), ["written before the copy", "after"]);
        assert!(b.notices.iter().any(|n| n.contains("copytruncate")));
    }

    #[test]
    fn restart_resumes_and_finds_the_rotated_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.log");
        append(&p, "a\nb\n");
        let mut t = Tailer::new(&p, None, 1 << 20);
        t.poll(usize::MAX).expect("poll");
        let cp = t.checkpoint();
        drop(t);
        append(&p, "c\n");
        // Same file: continue at the checkpoint.
        let mut t = Tailer::new(&p, Some(cp.clone()), 1 << 20);
        assert_eq!(texts(&t.poll(usize::MAX).expect("poll")), ["c"]);
        // Rotated while down: the rest of the old file, then the new one.
        drop(t);
        fs::rename(&p, d.path().join("a.log.1")).expect("rename");
        append(&p, "d\n");
        let mut t = Tailer::new(&p, Some(cp), 1 << 20);
        assert_eq!(texts(&drain(&mut t)), ["c", "d"]);
    }

    /// Regression (issue 15): rotated twice while not followed (`a.log` → `a.log.1` →
    /// `a.log.2`, a new `a.log` each time), the middle file was never read: only the
    /// checkpoint's file was looked for. Every file is read once, in order; a compressed one
    /// rotated in between is reported; numbered (logrotate) and dated names alike.
    #[test]
    fn rotated_twice_while_stopped_reads_every_file_once_in_order() {
        for dated in [false, true] {
            let d = tempfile::tempdir().expect("tempdir");
            let p = d.path().join("a.log");
            let name = |k: u32| {
                d.path().join(if dated {
                    format!("a.log-2026112{k}")
                } else {
                    format!("a.log.{k}")
                })
            };
            append(&p, "a1\na2\n");
            stamp(&p, 1);
            let mut t = Tailer::new(&p, None, 1 << 20);
            assert_eq!(texts(&drain(&mut t)), ["a1", "a2"]);
            let cp = t.checkpoint();
            drop(t);
            // Down: a3 written, rotated; b written, rotated; c written.
            append(&p, "a3\n");
            stamp(&p, 2);
            // An older rotation, read long ago: not read again.
            append(&name(9), "old\n");
            stamp(&name(9), 0);
            fs::rename(&p, name(1)).expect("rotate");
            append(&p, "b1\nb2-no-newline");
            stamp(&p, 3);
            if dated {
                fs::rename(&p, name(2)).expect("rotate");
            } else {
                // logrotate: a.log.1 -> a.log.2, a.log -> a.log.1
                fs::rename(name(1), name(2)).expect("rotate");
                fs::rename(&p, name(1)).expect("rotate");
            }
            // A compressed copy made by the rotation (logrotate's `compress`).
            let gz = PathBuf::from(format!("{}.gz", name(5).display()));
            fs::write(&gz, b"\x1f\x8b\x08\0junk").expect("gz");
            stamp(&gz, 4);
            append(&p, "c1\n");
            stamp(&p, 5);
            let mut t = Tailer::new(&p, Some(cp), 1 << 20);
            let b = drain(&mut t);
            assert_eq!(
                texts(&b),
                ["a3", "b1", "b2-no-newline", "c1"],
                "dated {dated}: {:?}",
                b.notices
            );
            assert!(b.lines[1].file_start && b.lines[3].file_start);
            assert!(
                b.notices
                    .iter()
                    .any(|n| n.contains("rotated more than once")),
                "{:?}",
                b.notices
            );
            assert!(
                b.notices
                    .iter()
                    .any(|n| n.contains(".gz: rotated after the file being read, but not text")),
                "{:?}",
                b.notices
            );
            // A restart now continues where it stands: nothing twice.
            let cp = t.checkpoint();
            append(&p, "c2\n");
            stamp(&p, 6);
            let mut t = Tailer::new(&p, Some(cp), 1 << 20);
            assert_eq!(texts(&drain(&mut t)), ["c2"]);
        }
    }

    /// Rotated twice between two polls of a running tailer (it was busy): the same.
    #[test]
    fn rotated_twice_between_polls_reads_the_middle_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.log");
        append(&p, "a1\n");
        stamp(&p, 1);
        let mut t = Tailer::new(&p, None, 1 << 20);
        assert_eq!(texts(&drain(&mut t)), ["a1"]);
        append(&p, "a2\n");
        stamp(&p, 2);
        fs::rename(&p, d.path().join("a.log.1")).expect("rotate");
        append(&p, "b1\n");
        stamp(&p, 3);
        fs::rename(d.path().join("a.log.1"), d.path().join("a.log.2")).expect("rotate");
        fs::rename(&p, d.path().join("a.log.1")).expect("rotate");
        append(&p, "c1\n");
        stamp(&p, 4);
        assert_eq!(texts(&drain(&mut t)), ["a2", "b1", "c1"]);
    }

    #[test]
    fn rotation_suffixes() {
        for yes in [
            "x.log.1",
            "x.log.12",
            "x.log-20261124",
            "x.log.2026-11-24",
            "x.log.2026-11-24.0",
            "x.log_3",
            "x.log.1.gz",
        ] {
            assert!(is_rotation_of(yes, "x.log"), "{yes}");
        }
        for no in [
            "x.log",
            "x.log.pos",
            "x.log.lock",
            "x.log.bak",
            "x.log.",
            "x.log.-",
            "x.logger.1",
            "y.log.1",
            "x.log.gz",
        ] {
            assert!(!is_rotation_of(no, "x.log"), "{no}");
        }
    }

    #[test]
    fn long_lines_are_cut_and_reported() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a.log");
        append(&p, &format!("{}\nok\n", "x".repeat(100)));
        let mut t = Tailer::new(&p, None, 10);
        let b = t.poll(usize::MAX).expect("poll");
        assert_eq!(texts(&b), ["x".repeat(10), "ok".to_string()]);
        assert_eq!(b.lines[1].offset, 101);
        assert_eq!(b.notices.len(), 1);
    }

    /// What a writer does to the file between two polls.
    #[derive(Debug, Clone)]
    enum Act {
        Write(u8, bool),
        Rename,
        /// A rename rotation the tailer does not see happen (it is down, or busy): several in
        /// a row are several rotations between two polls.
        RenameUnseen,
        CopyTruncate,
        Poll,
        Restart,
    }

    fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            6 => (1u8..4, any::<bool>()).prop_map(|(n, nl)| Act::Write(n, nl)),
            1 => Just(Act::Rename),
            2 => Just(Act::RenameUnseen),
            1 => Just(Act::CopyTruncate),
            3 => Just(Act::Poll),
            1 => Just(Act::Restart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Model test: whatever the sequence of appends, rename rotations (seen, or several
        /// between two polls or while stopped), copytruncates and restarts from the last
        /// checkpoint, every line written is handed out exactly once and in order —
        /// copytruncate included, since the copy is read (no writes happen between the copy and
        /// the truncation here). Modification times follow a logical clock (see [`stamp`]).
        #[test]
        fn every_line_exactly_once(acts in proptest::collection::vec(act(), 1..40)) {
            let d = tempfile::tempdir().expect("tempdir");
            let p = d.path().join("svc.log");
            fs::write(&p, b"").expect("create");
            let mut clock = 0u64;
            let mut tick = |f: &Path| {
                clock += 1;
                stamp(f, clock);
            };
            tick(&p);
            let mut t = Tailer::new(&p, None, 1 << 20);
            let mut written: Vec<String> = Vec::new();
            let mut pending = String::new(); // current line not yet terminated
            let mut got: Vec<String> = Vec::new();
            let mut seq = 0u32;
            let mut rotations = 0u32;
            let drain = |t: &mut Tailer, got: &mut Vec<String>| {
                got.extend(texts(&drain(t)));
            };
            // Following starts with the file there (what was rotated away before it is not
            // its to read).
            drain(&mut t, &mut got);
            for a in acts {
                match a {
                    Act::Write(n, nl) => {
                        for i in 0..n {
                            seq += 1;
                            let piece = format!("line-{seq}");
                            pending.push_str(&piece);
                            if nl || i + 1 < n {
                                append(&p, &format!("{piece}\n"));
                                written.push(std::mem::take(&mut pending));
                            } else {
                                // left without its newline: `pending` stays open
                                append(&p, &piece);
                            }
                            tick(&p);
                        }
                    }
                    Act::Rename | Act::RenameUnseen => {
                        // Rotation finishes the file: a dangling partial line is its last line.
                        // Seen: the tailer polls just before and after it; unseen: it does not.
                        let seen = matches!(a, Act::Rename);
                        if seen {
                            drain(&mut t, &mut got);
                        }
                        rotations += 1;
                        fs::rename(&p, d.path().join(format!("svc.log.{rotations}"))).expect("rename");
                        if !pending.is_empty() {
                            written.push(std::mem::take(&mut pending));
                        }
                        fs::write(&p, b"").expect("create");
                        tick(&p);
                        if seen {
                            drain(&mut t, &mut got);
                        }
                    }
                    Act::CopyTruncate => {
                        // A file truncated before any of it was read leaves nothing to match
                        // its copy by (documented): the model reads it once first.
                        if t.checkpoint().fp_len == 0 {
                            drain(&mut t, &mut got);
                        }
                        rotations += 1;
                        let copy = d.path().join(format!("svc.log.{rotations}"));
                        fs::copy(&p, &copy).expect("copy");
                        tick(&copy);
                        fs::OpenOptions::new().write(true).open(&p)
                            .and_then(|f| f.set_len(0)).expect("truncate");
                        tick(&p);
                        if !pending.is_empty() {
                            written.push(std::mem::take(&mut pending));
                        }
                        drain(&mut t, &mut got);
                    }
                    Act::Poll => drain(&mut t, &mut got),
                    Act::Restart => {
                        let cp = t.checkpoint();
                        t = Tailer::new(&p, Some(cp), 1 << 20);
                    }
                }
            }
            drain(&mut t, &mut got);
            prop_assert_eq!(got, written);
        }
    }
}
