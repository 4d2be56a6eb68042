//! Followed sources, read as they grow: a local file ([`FileTail`], through a
//! [`Tailer`](super::tail::Tailer): rotation, truncation, restart) and an HTTP(S) URL
//! ([`HttpRange`], with `Range` requests). Both parse lines into events with the source's format
//! and zone, and hand out batches whose checkpoint never passes an entry still being assembled
//! (a stack trace may continue), so a restart from it re-reads that entry rather than losing it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, CheckpointDelta, Coverage};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::parser::format::Format;
use crate::parser::{EntryParser, Notice, Registry, SourceMeta};
use crate::time::Tz;

use super::tail::{TailLine, Tailer};
use super::{sink_error, Batch, Progress, Source};

/// How a followed source reads.
#[derive(Debug, Clone)]
pub struct FollowSpec {
    /// Source key (its URL): the key of its checkpoints.
    pub key: String,
    /// Node name for its events.
    pub node: String,
    /// Forced format, else detected from the first lines.
    pub format: Option<Arc<Format>>,
    /// Time zone of zone-less timestamps.
    pub tz: Tz,
    /// Index an entry still being assembled after this long without new lines.
    pub flush: Duration,
    /// Longest line kept.
    pub max_line: usize,
}

/// Assembles lines into events and keeps the checkpoint honest.
#[derive(Debug)]
struct Assembler {
    spec: FollowSpec,
    registry: Arc<Registry>,
    parser: Option<EntryParser>,
    source_name: String,
    last_line: Instant,
    /// What was understood of the entries handed out (from the checkpoint resumed on).
    coverage: Coverage,
}

impl Assembler {
    fn new(
        spec: FollowSpec,
        registry: Arc<Registry>,
        source_name: String,
        resume: Option<&Checkpoint>,
    ) -> Self {
        Assembler {
            spec,
            registry,
            parser: None,
            source_name,
            last_line: Instant::now(),
            coverage: resume.and_then(|c| c.coverage).unwrap_or_default(),
        }
    }

    /// Counts the events handed out.
    fn counted(&mut self, events: Vec<Event>) -> Vec<Event> {
        for e in &events {
            self.coverage.count(e);
        }
        events
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
        let out = self.parse(lines);
        self.counted(out)
    }

    fn parse(&mut self, lines: &[TailLine]) -> Vec<Event> {
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

    /// Ends the entry being assembled (the source is going away).
    fn finish(&mut self) -> Vec<Event> {
        let out = self
            .parser
            .as_mut()
            .map(|p| p.finish().into_iter().collect())
            .unwrap_or_default();
        self.counted(out)
    }

    /// The checkpoint to commit: the reader's position, pulled back to the entry being
    /// assembled, labelled with the source's key, node, format and event count.
    fn checkpoint(&self, mut cp: Checkpoint, events: u64) -> Checkpoint {
        if let Some((off, line)) = self.parser.as_ref().and_then(EntryParser::pending_start) {
            if off < cp.offset {
                cp.offset = off;
                cp.line = line.saturating_sub(1);
            }
        }
        cp.path = self.spec.key.clone();
        cp.node = self.spec.node.clone();
        let format = self.format_name();
        if !format.is_empty() {
            cp.format = format;
        }
        cp.events = events;
        cp.coverage = Some(self.coverage);
        cp
    }
}

/// A local file followed across rotation and truncation.
#[derive(Debug)]
pub struct FileTail {
    tailer: Tailer,
    asm: Assembler,
    path: std::path::PathBuf,
    /// Where the last batch handed out left the source.
    last: Checkpoint,
}

impl FileTail {
    /// Follows `path` from `resume` (the committed checkpoint of `spec.key`) on.
    pub fn new(
        spec: FollowSpec,
        path: std::path::PathBuf,
        resume: Option<Checkpoint>,
        registry: Arc<Registry>,
    ) -> FileTail {
        let tailer = Tailer::new(&path, resume.clone(), spec.max_line);
        let asm = Assembler::new(spec, registry, path.display().to_string(), resume.as_ref());
        let events = resume.as_ref().map_or(0, |c| c.events);
        let last = asm.checkpoint(tailer.checkpoint(), events);
        FileTail {
            tailer,
            asm,
            path,
            last: resume.unwrap_or(last),
        }
    }

    fn step(
        &mut self,
        emit: &mut dyn FnMut(Batch) -> Result<()>,
        stopping: bool,
    ) -> Result<Progress> {
        let batch = self
            .tailer
            .poll(4 << 20)
            .map_err(|e| Error::io(&self.path, e))?;
        let at = self.tailer.checkpoint().offset;
        let notices: Vec<Notice> = batch
            .notices
            .into_iter()
            .map(|message| Notice {
                offset: at,
                message,
            })
            .collect();
        let busy = !batch.lines.is_empty();
        let bytes: u64 = batch.lines.iter().map(|l| l.bytes.len() as u64 + 1).sum();
        let mut events = self.asm.push(&batch.lines);
        let at = self.tailer.checkpoint();
        let left_behind = self
            .asm
            .parser
            .as_ref()
            .and_then(EntryParser::pending_start)
            .is_some_and(|(off, _)| off >= at.offset);
        if stopping || left_behind {
            // Going away (the registration vanished or shutdown): index what is assembled.
            // Or the entry being assembled starts at or past where the reader now stands: it
            // belongs to a file the reader has left (rotated, or truncated and finished from
            // its copy). Nothing can continue it, and the checkpoint is about to move to the
            // new file, where it could not be pulled back to it: a crash would lose it.
            events.extend(self.asm.finish());
        }
        let count = self.last.events + events.len() as u64;
        let cp = self.asm.checkpoint(at, count);
        if !events.is_empty() || !cp.same_position(&self.last) {
            let delta = CheckpointDelta::new(Some(self.last.clone()), cp.clone());
            emit(Batch {
                events,
                delta: Some(delta),
                txn_ranges: Vec::new(),
                bytes,
                notices,
            })
            .map_err(sink_error)?;
            self.last = cp;
        } else if !notices.is_empty() {
            emit(Batch {
                notices,
                ..Batch::default()
            })
            .map_err(sink_error)?;
        }
        Ok(if busy { Progress::Busy } else { Progress::Idle })
    }
}

impl Source for FileTail {
    fn key(&self) -> &str {
        &self.asm.spec.key
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        self.step(emit, false)
    }

    fn finish(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<()> {
        self.step(emit, true).map(|_| ())
    }

    fn lag(&self) -> Option<u64> {
        self.tailer.lag()
    }
}

/// Bytes asked for in one `Range` request.
const CHUNK: u64 = 8 << 20;

/// An HTTP(S) URL followed with `Range` requests.
#[derive(Debug)]
pub struct HttpRange {
    url: String,
    agent: ureq::Agent,
    asm: Assembler,
    cp: Checkpoint,
    last: Checkpoint,
    /// Bytes fetched past the last complete line (offset of its first byte = `partial_at`).
    partial: Vec<u8>,
    partial_at: u64,
    fresh: bool,
}

impl HttpRange {
    /// Follows `url` from `resume` (the committed checkpoint of `spec.key`) on.
    pub fn new(
        spec: FollowSpec,
        url: String,
        resume: Option<Checkpoint>,
        registry: Arc<Registry>,
    ) -> HttpRange {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(20)))
            .http_status_as_error(false)
            .build()
            .into();
        let cp = resume.unwrap_or_else(|| Checkpoint::start(spec.key.clone()));
        let asm = Assembler::new(spec, registry, url.clone(), Some(&cp));
        HttpRange {
            agent,
            partial: Vec::new(),
            partial_at: cp.offset,
            fresh: cp.offset == 0,
            last: cp.clone(),
            cp,
            asm,
            url,
        }
    }

    fn step(
        &mut self,
        emit: &mut dyn FnMut(Batch) -> Result<()>,
        stopping: bool,
    ) -> Result<Progress> {
        let url = self.url.clone();
        let mut notices: Vec<Notice> = Vec::new();
        let mut note = |offset: u64, message: String| notices.push(Notice { offset, message });
        let from = self.partial_at + self.partial.len() as u64;
        let res = self
            .agent
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
                        self.partial.extend_from_slice(&b);
                    }
                    (200, Ok(b)) => {
                        // No range support: the whole body again; keep what is new.
                        let len = b.len() as u64;
                        if len < from {
                            note(from, format!("{url}: shorter ({len} bytes) than already read ({from}): truncated or replaced; reading from the start"));
                            self.partial.clear();
                            self.partial_at = 0;
                            self.cp.line = 0;
                            self.fresh = true;
                            self.partial.extend_from_slice(&b);
                            got = len;
                        } else {
                            let skip = usize::try_from(from).unwrap_or(usize::MAX).min(b.len());
                            self.partial.extend_from_slice(&b[skip..]);
                            got = len - from;
                        }
                    }
                    (416, _) => {
                        if total.is_some_and(|t| t < from) {
                            note(from, format!("{url}: now {} bytes, fewer than already read ({from}): truncated or replaced; reading from the start", total.unwrap_or(0)));
                            self.partial.clear();
                            self.partial_at = 0;
                            self.cp.line = 0;
                            self.fresh = true;
                        }
                    }
                    (s, Ok(_)) => note(from, format!("{url}: HTTP {s}")),
                    (_, Err(e)) => note(from, format!("{url}: reading the response: {e}")),
                }
            }
            Err(e) => note(from, format!("{url}: {e}")),
        }
        // Complete lines out of the buffer.
        let max_line = self.asm.spec.max_line;
        let mut start = 0usize;
        while let Some(i) = memchr::memchr(b'\n', &self.partial[start..]) {
            let end = start + i;
            self.cp.line += 1;
            let mut bytes = self.partial[start..end].to_vec();
            bytes.truncate(max_line);
            lines.push(TailLine {
                offset: self.partial_at + start as u64,
                number: self.cp.line,
                bytes,
                file_start: std::mem::take(&mut self.fresh),
            });
            start = end + 1;
        }
        self.partial.drain(..start);
        self.partial_at += start as u64;
        if self.partial.len() > max_line {
            // A line with no end in sight: index its beginning, drop the rest.
            self.cp.line += 1;
            lines.push(TailLine {
                offset: self.partial_at,
                number: self.cp.line,
                bytes: self.partial[..max_line].to_vec(),
                file_start: std::mem::take(&mut self.fresh),
            });
            note(
                self.partial_at,
                format!(
                    "{url}: line at byte {} is longer than {max_line} bytes; only its beginning is indexed",
                    self.partial_at
                ),
            );
            self.partial_at += self.partial.len() as u64;
            self.partial.clear();
        }
        self.cp.offset = self.partial_at;
        let mut events = self.asm.push(&lines);
        if stopping {
            events.extend(self.asm.finish());
        }
        if !events.is_empty() || !lines.is_empty() {
            let count = self.last.events + events.len() as u64;
            let cp = self.asm.checkpoint(self.cp.clone(), count);
            let delta = CheckpointDelta::new(Some(self.last.clone()), cp.clone());
            emit(Batch {
                events,
                delta: Some(delta),
                txn_ranges: Vec::new(),
                bytes: got,
                notices,
            })
            .map_err(sink_error)?;
            self.last = cp;
        } else if !notices.is_empty() {
            emit(Batch {
                notices,
                ..Batch::default()
            })
            .map_err(sink_error)?;
        }
        Ok(if got < CHUNK {
            Progress::Idle
        } else {
            Progress::Busy
        })
    }
}

impl Source for HttpRange {
    fn key(&self) -> &str {
        &self.asm.spec.key
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        self.step(emit, false)
    }

    fn finish(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<()> {
        self.step(emit, true).map(|_| ())
    }

    fn idle_wait(&self, poll: Duration) -> Duration {
        poll.max(Duration::from_millis(500))
    }
}
