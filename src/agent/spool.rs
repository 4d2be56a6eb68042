//! The agent's on-disk spool: requests ready to send, in order, bounded in bytes.
//!
//! Each request is one file `NNNNNNNNNNNNNNNNNNNN.req` (a sequence number, so names sort in the
//! order they were written): an 8-byte little-endian count of the log bytes it carries, then the
//! request body as sent (gzip'd OTLP protobuf). A file is written under a dot-name, synced and
//! renamed, so a crash leaves whole requests or none; the sender removes a file only after the
//! service answered 2xx (which it does after committing). A request the service refuses for
//! good (400) is moved to `rejected/` (the last few are kept, for a look).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Rejected requests kept for inspection.
const KEEP_REJECTED: usize = 16;

#[derive(Debug, Default)]
struct State {
    /// Sequence numbers and sizes (file bytes) of the spooled requests, oldest first.
    queue: std::collections::VecDeque<(u64, u64)>,
    next: u64,
    bytes: u64,
}

/// A directory of spooled requests.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

/// A spooled request.
#[derive(Debug)]
pub struct Spooled {
    /// Its sequence number.
    pub seq: u64,
    /// Log bytes it carries.
    pub log_bytes: u64,
    /// The request body.
    pub body: Vec<u8>,
}

fn name(seq: u64) -> String {
    format!("{seq:020}.req")
}

impl Spool {
    /// Opens (creating) the spool in `dir`, finding what an earlier run left; half-written
    /// files (dot-names) are removed.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        fs::create_dir_all(dir.join("rejected")).map_err(|e| Error::io(dir, e))?;
        let mut queue = Vec::new();
        for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') {
                let _ = fs::remove_file(e.path());
                continue;
            }
            if let Some(seq) = n.strip_suffix(".req").and_then(|s| s.parse::<u64>().ok()) {
                let len = e.metadata().map_err(|er| Error::io(e.path(), er))?.len();
                queue.push((seq, len));
            }
        }
        queue.sort_unstable();
        let next = queue.last().map_or(0, |&(s, _)| s + 1);
        let bytes = queue.iter().map(|&(_, l)| l).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(State {
                queue: queue.into(),
                next,
                bytes,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.state().bytes
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a request of `len` body bytes fits under the bound.
    pub fn fits(&self, len: usize) -> bool {
        let s = self.state();
        s.queue.is_empty() || s.bytes + len as u64 + 8 <= self.max_bytes
    }

    /// Appends a request (durably: synced and renamed into place).
    pub fn push(&self, log_bytes: u64, body: &[u8]) -> Result<u64> {
        let seq = self.state().next;
        let tmp = self.dir.join(format!(".{}", name(seq)));
        let fin = self.dir.join(name(seq));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&log_bytes.to_le_bytes())?;
            f.write_all(body)?;
            f.sync_all()?;
            fs::rename(&tmp, &fin)?;
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| Error::io(&fin, e))?;
        let mut s = self.state();
        s.next = seq + 1;
        let len = body.len() as u64 + 8;
        s.queue.push_back((seq, len));
        s.bytes += len;
        Ok(seq)
    }

    /// The oldest request, read from disk (a file that cannot be read is dropped and said).
    pub fn oldest(&self) -> Option<Spooled> {
        loop {
            let (seq, _) = *self.state().queue.front()?;
            let p = self.dir.join(name(seq));
            let read = || -> io::Result<Spooled> {
                let mut f = File::open(&p)?;
                let mut head = [0u8; 8];
                f.read_exact(&mut head)?;
                let mut body = Vec::new();
                f.read_to_end(&mut body)?;
                Ok(Spooled {
                    seq,
                    log_bytes: u64::from_le_bytes(head),
                    body,
                })
            };
            match read() {
                Ok(r) => return Some(r),
                Err(e) => {
                    eprintln!(
                        "zklens agent: spool: {}: {e}; dropped (the service deduplicates what is read again)",
                        p.display()
                    );
                    self.remove(seq);
                }
            }
        }
    }

    /// Removes a request (sent).
    pub fn remove(&self, seq: u64) {
        let _ = fs::remove_file(self.dir.join(name(seq)));
        let mut s = self.state();
        if let Some(i) = s.queue.iter().position(|&(q, _)| q == seq) {
            if let Some((_, len)) = s.queue.remove(i) {
                s.bytes = s.bytes.saturating_sub(len);
            }
        }
    }

    /// Moves a request the service refuses for good to `rejected/` (keeping the last few).
    pub fn reject(&self, seq: u64) {
        let from = self.dir.join(name(seq));
        let rejected = self.dir.join("rejected");
        let _ = fs::rename(&from, rejected.join(name(seq)));
        if let Ok(rd) = fs::read_dir(&rejected) {
            let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            names.sort();
            let extra = names.len().saturating_sub(KEEP_REJECTED);
            for p in names.into_iter().take(extra) {
                let _ = fs::remove_file(p);
            }
        }
        self.remove(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_back_in_order_across_a_reopen_and_the_bound_holds() {
        let d = tempfile::tempdir().expect("tmp");
        let s = Spool::open(d.path(), 100).expect("open");
        assert!(s.fits(50));
        s.push(10, &[1u8; 40]).expect("push");
        s.push(20, &[2u8; 40]).expect("push");
        assert_eq!(s.bytes(), 96);
        assert!(!s.fits(40), "96 + 48 > 100");
        // A half-written file from a crash is not a request.
        std::fs::write(d.path().join(".00000000000000000002.req"), b"xx").expect("write");
        drop(s);
        let s = Spool::open(d.path(), 100).expect("reopen");
        assert_eq!(s.len(), 2);
        let first = s.oldest().expect("one");
        assert_eq!((first.seq, first.log_bytes, first.body[0]), (0, 10, 1));
        s.remove(first.seq);
        let second = s.oldest().expect("two");
        assert_eq!((second.seq, second.log_bytes, second.body[0]), (1, 20, 2));
        s.reject(second.seq);
        assert!(s.is_empty() && s.oldest().is_none());
        assert!(d.path().join("rejected/00000000000000000001.req").exists());
        assert_eq!(s.push(1, b"x").expect("push"), 2, "numbers keep growing");
    }
}
