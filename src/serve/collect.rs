//! Collectors: one thread per source, turning new bytes into events for the index writer.
//!
//! A collector reads (a file through [`Tailer`], an HTTP URL with `Range` requests), parses
//! lines into events with the source's format, and sends them with the checkpoint they end at
//! over a bounded channel: when the writer is slow the send blocks and the collector stops
//! reading, so memory stays bounded. The checkpoint never passes an entry still being assembled
//! (a stack trace may continue), so a restart from it re-reads that entry rather than losing it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::Event;
use crate::parser::format::Format;
use crate::parser::{EntryParser, Registry, SourceMeta};
use crate::source::tail::{TailCheckpoint, TailLine, Tailer};
use crate::time::Tz;

/// What a collector sends to the writer.
#[derive(Debug)]
pub enum Msg {
    /// Events from one source, and where that source now stands.
    Batch {
        /// Source key (its URL).
        key: String,
        /// Node the events belong to.
        node: String,
        /// Format in use.
        format: String,
        /// The events, in source order.
        events: Vec<Event>,
        /// Everything before this is in `events` or was sent earlier.
        checkpoint: TailCheckpoint,
        /// Bytes consumed since the previous batch.
        bytes: u64,
    },
    /// Transaction-log events and the zxid ranges they cover.
    Txns {
        /// The events.
        events: Vec<Event>,
        /// zxid ranges now indexed.
        ranges: Vec<(u64, u64)>,
    },
    /// Something to tell the operator about a source.
    Notice {
        /// Source key.
        key: String,
        /// The message.
        message: String,
    },
}

/// How a collector reads.
#[derive(Debug, Clone)]
pub struct CollectorSpec {
    /// Source key (URL).
    pub key: String,
    /// Node name for its events.
    pub node: String,
    /// Forced format, else detected from the first lines.
    pub format: Option<Arc<Format>>,
    /// Time zone of zone-less timestamps.
    pub tz: Tz,
    /// Poll interval when idle.
    pub poll: Duration,
    /// Index an entry still being assembled after this long without new lines.
    pub flush: Duration,
    /// Longest line kept.
    pub max_line: usize,
}

/// Assembles lines into events and keeps the checkpoint honest.
struct Assembler {
    spec: CollectorSpec,
    registry: Arc<Registry>,
    parser: Option<EntryParser>,
    source_name: String,
    last_line: Instant,
}

impl Assembler {
    fn new(spec: CollectorSpec, registry: Arc<Registry>, source_name: String) -> Self {
        Assembler {
            spec,
            registry,
            parser: None,
            source_name,
            last_line: Instant::now(),
        }
    }

    fn parser(&mut self, first: &[TailLine]) -> Option<&mut EntryParser> {
        if self.parser.is_none() {
            let format = match &self.spec.format {
                Some(f) => f.clone(),
                None => {
                    let sample: Vec<&[u8]> = first
                        .iter()
                        .map(|l| l.bytes.as_slice())
                        .filter(|b| !b.trim_ascii().is_empty())
                        .take(64)
                        .collect();
                    if sample.is_empty() {
                        return None;
                    }
                    self.registry.detect(&sample)
                }
            };
            self.parser = Some(EntryParser::new(
                format,
                SourceMeta {
                    node: Arc::from(self.spec.node.as_str()),
                    source: Arc::from(self.source_name.as_str()),
                    tz: self.spec.tz,
                },
            ));
        }
        self.parser.as_mut()
    }

    fn format_name(&self) -> String {
        self.parser
            .as_ref()
            .map(|p| p.format().def.name.clone())
            .unwrap_or_default()
    }

    /// Parses lines; returns the events completed.
    fn push(&mut self, lines: &[TailLine]) -> Vec<Event> {
        let mut out = Vec::new();
        if lines.is_empty() {
            // Quiet: index the entry being assembled once it has waited long enough.
            if self.last_line.elapsed() >= self.spec.flush {
                if let Some(p) = self.parser.as_mut() {
                    out.extend(p.finish());
                }
            }
            return out;
        }
        self.last_line = Instant::now();
        let Some(p) = self.parser(lines) else {
            return out;
        };
        for l in lines {
            if l.file_start {
                out.extend(p.finish());
            }
            out.extend(p.push(&l.bytes, l.offset, l.number));
        }
        out
    }

    /// The checkpoint to commit: the reader's, pulled back to the entry being assembled.
    fn checkpoint(&self, mut cp: TailCheckpoint) -> TailCheckpoint {
        if let Some((off, line)) = self.parser.as_ref().and_then(EntryParser::pending_start) {
            if off < cp.offset {
                cp.offset = off;
                cp.line = line.saturating_sub(1);
            }
        }
        cp
    }
}

/// Follows a local file until `stop` is set; sends batches to `tx`.
pub fn run_file(
    spec: CollectorSpec,
    path: std::path::PathBuf,
    resume: Option<TailCheckpoint>,
    registry: Arc<Registry>,
    tx: SyncSender<Msg>,
    stop: Arc<AtomicBool>,
) {
    let mut tailer = Tailer::new(&path, resume, spec.max_line);
    let mut asm = Assembler::new(spec.clone(), registry, path.display().to_string());
    let mut last_sent = tailer.checkpoint();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let batch = match tailer.poll(4 << 20) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Msg::Notice {
                    key: spec.key.clone(),
                    message: format!("{}: {e}", path.display()),
                });
                std::thread::sleep(spec.poll.max(Duration::from_secs(1)));
                if stopping {
                    return;
                }
                continue;
            }
        };
        for n in batch.notices {
            let _ = tx.send(Msg::Notice {
                key: spec.key.clone(),
                message: n,
            });
        }
        let busy = !batch.lines.is_empty();
        let bytes: u64 = batch.lines.iter().map(|l| l.bytes.len() as u64 + 1).sum();
        let mut events = asm.push(&batch.lines);
        if stopping {
            // Going away (the registration vanished or shutdown): index what is assembled.
            if let Some(p) = asm.parser.as_mut() {
                events.extend(p.finish());
            }
        }
        let cp = asm.checkpoint(tailer.checkpoint());
        if !events.is_empty() || cp != last_sent {
            last_sent = cp.clone();
            let msg = Msg::Batch {
                key: spec.key.clone(),
                node: spec.node.clone(),
                format: asm.format_name(),
                events,
                checkpoint: cp,
                bytes,
            };
            if tx.send(msg).is_err() {
                return; // the writer is gone
            }
        }
        if stopping {
            return;
        }
        if !busy {
            sleep_unless(&stop, spec.poll);
        }
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(25).min(d));
    }
}

/// Follows an HTTP(S) URL with `Range` requests until `stop` is set.
pub fn run_http(
    spec: CollectorSpec,
    url: String,
    resume: Option<TailCheckpoint>,
    registry: Arc<Registry>,
    tx: SyncSender<Msg>,
    stop: Arc<AtomicBool>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut cp = resume.unwrap_or(TailCheckpoint {
        path: url.clone().into(),
        id: None,
        fp: 0,
        fp_len: 0,
        offset: 0,
        line: 0,
    });
    let mut asm = Assembler::new(spec.clone(), registry, url.clone());
    // Bytes fetched past the last complete line (offset of its first byte = `partial_at`).
    let mut partial: Vec<u8> = Vec::new();
    let mut partial_at = cp.offset;
    let mut fresh = cp.offset == 0;
    const CHUNK: u64 = 8 << 20;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let from = partial_at + partial.len() as u64;
        let res = agent
            .get(&url)
            .header("Range", &format!("bytes={}-{}", from, from + CHUNK - 1))
            .call();
        let mut lines: Vec<TailLine> = Vec::new();
        let mut got = 0u64;
        match res {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let total = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|t| t.parse::<u64>().ok());
                let body = resp.body_mut().with_config().limit(CHUNK + 1).read_to_vec();
                match (status, body) {
                    (206, Ok(b)) => {
                        got = b.len() as u64;
                        partial.extend_from_slice(&b);
                    }
                    (200, Ok(b)) => {
                        // No range support: the whole body again; keep what is new.
                        let len = b.len() as u64;
                        if len < from {
                            let _ = tx.send(Msg::Notice {
                                key: spec.key.clone(),
                                message: format!("{url}: shorter ({len} bytes) than already read ({from}): truncated or replaced; reading from the start"),
                            });
                            partial.clear();
                            partial_at = 0;
                            cp.line = 0;
                            fresh = true;
                            partial.extend_from_slice(&b);
                            got = len;
                        } else {
                            let skip = usize::try_from(from).unwrap_or(usize::MAX).min(b.len());
                            partial.extend_from_slice(&b[skip..]);
                            got = len - from;
                        }
                    }
                    (416, _) => {
                        if total.is_some_and(|t| t < from) {
                            let _ = tx.send(Msg::Notice {
                                key: spec.key.clone(),
                                message: format!("{url}: now {} bytes, fewer than already read ({from}): truncated or replaced; reading from the start", total.unwrap_or(0)),
                            });
                            partial.clear();
                            partial_at = 0;
                            cp.line = 0;
                            fresh = true;
                        }
                    }
                    (s, Ok(_)) => {
                        let _ = tx.send(Msg::Notice {
                            key: spec.key.clone(),
                            message: format!("{url}: HTTP {s}"),
                        });
                    }
                    (_, Err(e)) => {
                        let _ = tx.send(Msg::Notice {
                            key: spec.key.clone(),
                            message: format!("{url}: reading the response: {e}"),
                        });
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Msg::Notice {
                    key: spec.key.clone(),
                    message: format!("{url}: {e}"),
                });
            }
        }
        // Complete lines out of the buffer.
        let mut start = 0usize;
        while let Some(i) = memchr::memchr(b'\n', &partial[start..]) {
            let end = start + i;
            cp.line += 1;
            let mut bytes = partial[start..end].to_vec();
            bytes.truncate(spec.max_line);
            lines.push(TailLine {
                offset: partial_at + start as u64,
                number: cp.line,
                bytes,
                file_start: std::mem::take(&mut fresh),
            });
            start = end + 1;
        }
        partial.drain(..start);
        partial_at += start as u64;
        if partial.len() > spec.max_line {
            // A line with no end in sight: index its beginning, drop the rest.
            cp.line += 1;
            lines.push(TailLine {
                offset: partial_at,
                number: cp.line,
                bytes: partial[..spec.max_line].to_vec(),
                file_start: std::mem::take(&mut fresh),
            });
            let _ = tx.send(Msg::Notice {
                key: spec.key.clone(),
                message: format!(
                    "{url}: line at byte {partial_at} is longer than {} bytes; only its beginning is indexed",
                    spec.max_line
                ),
            });
            partial_at += partial.len() as u64;
            partial.clear();
        }
        cp.offset = partial_at;
        let mut events = asm.push(&lines);
        if stopping {
            if let Some(p) = asm.parser.as_mut() {
                events.extend(p.finish());
            }
        }
        if !events.is_empty() || !lines.is_empty() {
            let msg = Msg::Batch {
                key: spec.key.clone(),
                node: spec.node.clone(),
                format: asm.format_name(),
                events,
                checkpoint: asm.checkpoint(cp.clone()),
                bytes: got,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        if stopping {
            return;
        }
        if got < CHUNK {
            sleep_unless(&stop, spec.poll.max(Duration::from_millis(500)));
        }
    }
}
