//! The agent's on-disk spool: requests ready to send, in order, bounded in bytes.
//!
//! Each request is one file `NNNNNNNNNNNNNNNNNNNN.req` (a sequence number, so names sort in the
//! order they were written): an 8-byte little-endian count of the log bytes it carries, the
//! 4-byte length of a JSON list of the spans it carries (`[key, start offset, end offset]` per
//! source), that list, then the request body as sent (gzip'd OTLP protobuf). A file is written under a dot-name, synced and
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

/// What a request carries of one source: its key, and the offsets of its first line and past
/// its last.
pub type Span = (String, u64, u64);

#[derive(Debug, Default)]
struct State {
    /// Sequence numbers, sizes (file bytes) and spans of the spooled requests, oldest first.
    queue: std::collections::VecDeque<(u64, u64, Vec<Span>)>,
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

/// Reads a request file's header: its log bytes and spans (the file is left at its body).
fn head_of(f: &mut File) -> io::Result<(u64, Vec<Span>)> {
    let mut head = [0u8; 12];
    f.read_exact(&mut head)?;
    let log_bytes = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
    let meta_len = u32::from_le_bytes(head[8..].try_into().unwrap_or_default());
    if meta_len > 1 << 20 {
        return Err(io::Error::other(format!(
            "a {meta_len}-byte header: not a spooled request"
        )));
    }
    let mut meta = vec![0u8; meta_len as usize];
    f.read_exact(&mut meta)?;
    let spans = serde_json::from_slice(&meta).map_err(io::Error::other)?;
    Ok((log_bytes, spans))
}

fn read_head(p: &Path) -> io::Result<(u64, Vec<Span>)> {
    head_of(&mut File::open(p)?)
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
                match read_head(&e.path()) {
                    Ok((_, spans)) => queue.push((seq, len, spans)),
                    Err(er) => {
                        eprintln!(
                            "zklens agent: spool: {}: {er}; dropped (the service deduplicates what is read again)",
                            e.path().display()
                        );
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        queue.sort_unstable_by_key(|q| q.0);
        let next = queue.last().map_or(0, |q| q.0 + 1);
        let bytes = queue.iter().map(|q| q.1).sum();
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

    /// The lowest offset each source's spooled requests start at.
    pub fn lowest(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for (_, _, spans) in &self.state().queue {
            for (k, start, _) in spans {
                let e = out.entry(k.clone()).or_insert(*start);
                *e = (*e).min(*start);
            }
        }
        out
    }

    /// Removes every request (the sources are read again from the service's checkpoints).
    pub fn clear(&self) {
        let seqs: Vec<u64> = self.state().queue.iter().map(|q| q.0).collect();
        for s in seqs {
            self.remove(s);
        }
    }

    /// Whether a request of `len` body bytes fits under the bound.
    pub fn fits(&self, len: usize) -> bool {
        let s = self.state();
        s.queue.is_empty() || s.bytes + len as u64 + 12 <= self.max_bytes
    }

    /// Appends a request carrying `spans` (durably: synced and renamed into place).
    pub fn push(&self, log_bytes: u64, spans: &[Span], body: &[u8]) -> Result<u64> {
        let meta = serde_json::to_vec(spans).unwrap_or_else(|_| b"[]".to_vec());
        let seq = self.state().next;
        let tmp = self.dir.join(format!(".{}", name(seq)));
        let fin = self.dir.join(name(seq));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&log_bytes.to_le_bytes())?;
            f.write_all(&u32::try_from(meta.len()).unwrap_or(0).to_le_bytes())?;
            f.write_all(&meta)?;
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
        let len = body.len() as u64 + 12 + meta.len() as u64;
        s.queue.push_back((seq, len, spans.to_vec()));
        s.bytes += len;
        Ok(seq)
    }

    /// The oldest request, read from disk (a file that cannot be read is dropped and said).
    pub fn oldest(&self) -> Option<Spooled> {
        loop {
            let seq = self.state().queue.front()?.0;
            let p = self.dir.join(name(seq));
            let read = || -> io::Result<Spooled> {
                let mut f = File::open(&p)?;
                let (log_bytes, _) = head_of(&mut f)?;
                let mut body = Vec::new();
                f.read_to_end(&mut body)?;
                Ok(Spooled {
                    seq,
                    log_bytes,
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
        if let Some(i) = s.queue.iter().position(|q| q.0 == seq) {
            if let Some((_, len, _)) = s.queue.remove(i) {
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
        let s = Spool::open(d.path(), 200).expect("open");
        assert!(s.fits(50));
        let a = [("agent://h/a".to_string(), 10, 20)];
        let b = [
            ("agent://h/a".to_string(), 20, 30),
            ("agent://h/b".to_string(), 5, 9),
        ];
        s.push(10, &a, &[1u8; 40]).expect("push");
        s.push(20, &b, &[2u8; 40]).expect("push");
        assert!(s.bytes() > 104 && s.bytes() < 200, "{}", s.bytes());
        assert!(!s.fits(40), "full");
        // A half-written file from a crash is not a request.
        std::fs::write(d.path().join(".00000000000000000002.req"), b"xx").expect("write");
        drop(s);
        let s = Spool::open(d.path(), 200).expect("reopen");
        assert_eq!(s.len(), 2);
        let low = s.lowest();
        assert_eq!(
            (low["agent://h/a"], low["agent://h/b"]),
            (10, 5),
            "spans survive a reopen"
        );
        let first = s.oldest().expect("one");
        assert_eq!((first.seq, first.log_bytes, first.body[0]), (0, 10, 1));
        s.remove(first.seq);
        let second = s.oldest().expect("two");
        assert_eq!((second.seq, second.log_bytes, second.body[0]), (1, 20, 2));
        s.reject(second.seq);
        assert!(s.is_empty() && s.oldest().is_none());
        assert!(d.path().join("rejected/00000000000000000001.req").exists());
        assert_eq!(
            s.push(1, &[], b"x").expect("push"),
            2,
            "numbers keep growing"
        );
        s.clear();
        assert!(s.is_empty() && s.bytes() == 0);
    }
}
