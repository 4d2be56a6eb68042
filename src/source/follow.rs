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
    /// The node's ensemble.
    pub ensemble: Arc<str>,
    /// Forced format, else detected from the first lines.
    pub format: Option<Arc<Format>>,
    /// Time zone of zone-less timestamps.
    pub tz: Tz,
    /// Index an entry still being assembled after this long without new lines.
    pub flush: Duration,
    /// Longest line kept.
    pub max_line: usize,
}

/// The format of a followed source, detected from its first lines (at most 64 that are not
/// blank; None: all blank so far).
pub fn detect(registry: &Registry, first: &[TailLine]) -> Option<Arc<Format>> {
    let sample: Vec<&[u8]> = first
        .iter()
        .map(|l| l.bytes.as_slice())
        .filter(|b| !b.trim_ascii().is_empty())
        .take(64)
        .collect();
    (!sample.is_empty()).then(|| registry.detect(&sample))
}

/// Assembles lines into events and keeps the checkpoint honest.
#[derive(Debug)]
pub(super) struct Assembler {
    pub(super) spec: FollowSpec,
    registry: Arc<Registry>,
    pub(super) parser: Option<EntryParser>,
    source_name: String,
    last_line: Instant,
    /// What was understood of the entries handed out (from the checkpoint resumed on).
    coverage: Coverage,
}

impl Assembler {
    pub(super) fn new(
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
                None => detect(&self.registry, first)?,
            };
            self.parser = Some(EntryParser::new(
                format,
                SourceMeta {
                    node: Arc::from(self.spec.node.as_str()),
                    ensemble: self.spec.ensemble.clone(),
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
    pub(super) fn push(&mut self, lines: &[TailLine]) -> Vec<Event> {
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
    pub(super) fn finish(&mut self) -> Vec<Event> {
        let out = self
            .parser
            .as_mut()
            .map(|p| p.finish().into_iter().collect())
            .unwrap_or_default();
        self.counted(out)
    }

    /// The checkpoint to commit: the reader's position, pulled back to the entry being
    /// assembled, labelled with the source's key, node, format and event count.
    pub(super) fn checkpoint(&self, mut cp: Checkpoint, events: u64) -> Checkpoint {
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

    /// Confines every open of the file to `root` (an allowed root of `zklens serve`): a symlink
    /// out of it, put there at any time, is refused and reported, never read.
    pub fn beneath(mut self, root: std::path::PathBuf) -> FileTail {
        self.tailer = self.tailer.beneath(root);
        self
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
                txn_ensemble: None,
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

/// Bytes asked for in one `Range` request, and most bytes held from one answer at a time (an
/// answer that ignores `Range` is streamed through in pieces of this size).
pub const HTTP_CHUNK: u64 = 8 << 20;

/// First wait after a failed request (an error, or an answer that cannot be used); it doubles
/// with each failure in a row, up to [`HTTP_BACKOFF_MAX`].
pub const HTTP_BACKOFF_MIN: Duration = Duration::from_millis(500);

/// Longest wait between two requests to a failing HTTP source.
pub const HTTP_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Timeout of one whole request (connection, answer and body).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Resolves every request of one source to the addresses its host had when the allowlist was
/// checked (`source::policy`): a name cannot resolve to something else later.
#[derive(Debug)]
struct Pinned {
    host: String,
    addrs: Vec<std::net::SocketAddr>,
}

impl ureq::unversioned::resolver::Resolver for Pinned {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !host.eq_ignore_ascii_case(&self.host) {
            // Only the checked URL is ever requested (redirects are off): anything else is
            // refused rather than resolved.
            return Err(ureq::Error::HostNotFound);
        }
        let mut out = self.empty();
        for a in &self.addrs {
            if out.try_push(*a).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// An HTTP(S) URL followed with `Range` requests. Redirects are never followed (a registration's
/// allowed host could send zklens anywhere): a redirect is reported. A server that ignores
/// `Range` (answers 200) is read too: the whole body is streamed, what was read already is
/// skipped, and the rest is handed out [`HTTP_CHUNK`] at a time. Failures are reported and
/// retried with exponential backoff ([`HTTP_BACKOFF_MIN`] to [`HTTP_BACKOFF_MAX`]).
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
    /// Failed requests in a row, and when the next may be made.
    failures: u32,
    retry_at: Option<Instant>,
    /// The server was found to ignore `Range` (reported once).
    no_ranges: bool,
    /// Requests made (for tests and status).
    requests: u64,
}

/// The agent every HTTP source uses: no redirects, no proxy from the environment (a proxy
/// would be connected to instead of the checked address), a timeout, statuses as answers.
fn http_config() -> ureq::config::Config {
    ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
}

impl HttpRange {
    /// Follows `url` from `resume` (the committed checkpoint of `spec.key`) on.
    pub fn new(
        spec: FollowSpec,
        url: String,
        resume: Option<Checkpoint>,
        registry: Arc<Registry>,
    ) -> HttpRange {
        let agent: ureq::Agent = http_config().into();
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
            failures: 0,
            retry_at: None,
            no_ranges: false,
            requests: 0,
        }
    }

    /// Connects only to `addrs` (the addresses the URL's host resolved to when it was checked),
    /// whatever the host resolves to later.
    pub fn pinned_to(mut self, addrs: Vec<std::net::SocketAddr>) -> HttpRange {
        let host = url_host(&self.url).unwrap_or_default();
        self.agent = ureq::Agent::with_parts(
            http_config(),
            ureq::unversioned::transport::DefaultConnector::new(),
            Pinned { host, addrs },
        );
        self
    }

    /// Requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// A failed request: reported, and the next one waits (doubling each time).
    fn failed(&mut self, note: &mut Vec<Notice>, at: u64, message: String) {
        self.failures = self.failures.saturating_add(1);
        let wait = HTTP_BACKOFF_MIN
            .saturating_mul(1u32 << self.failures.saturating_sub(1).min(16))
            .min(HTTP_BACKOFF_MAX);
        self.retry_at = Some(Instant::now() + wait);
        note.push(Notice {
            offset: at,
            message: format!(
                "{message} (failure {} in a row; next try in {:.1} s)",
                self.failures,
                wait.as_secs_f64()
            ),
        });
    }

    /// Starts again from byte 0 (the content is shorter than what was read).
    fn restart(&mut self) {
        self.partial.clear();
        self.partial_at = 0;
        self.cp.line = 0;
        self.fresh = true;
    }

    fn step(
        &mut self,
        emit: &mut dyn FnMut(Batch) -> Result<()>,
        stopping: bool,
    ) -> Result<Progress> {
        if !stopping && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(Progress::Idle);
        }
        let url = self.url.clone();
        let mut notices: Vec<Notice> = Vec::new();
        let from = self.partial_at + self.partial.len() as u64;
        self.requests += 1;
        let res = self
            .agent
            .get(&url)
            .header(
                "Range",
                &format!("bytes={}-{}", from, from + HTTP_CHUNK - 1),
            )
            .call();
        let mut got = 0u64;
        let mut ok = false;
        match res {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let total = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|t| t.parse::<u64>().ok());
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.chars().take(200).collect::<String>());
                match status {
                    206 => match resp
                        .body_mut()
                        .with_config()
                        .limit(HTTP_CHUNK + 1)
                        .read_to_vec()
                    {
                        Ok(b) => {
                            ok = true;
                            got = b.len() as u64;
                            self.partial.extend_from_slice(&b);
                        }
                        Err(e) => {
                            self.failed(&mut notices, from, format!("{url}: reading the response: {e}"))
                        }
                    },
                    200 => {
                        return self.whole_body(resp, from, notices, emit, stopping);
                    }
                    416 => {
                        ok = true;
                        if total.is_some_and(|t| t < from) {
                            notices.push(Notice { offset: from, message: format!("{url}: now {} bytes, fewer than already read ({from}): truncated or replaced; reading from the start", total.unwrap_or(0)) });
                            self.restart();
                        }
                    }
                    300..=399 => self.failed(
                        &mut notices,
                        from,
                        format!(
                            "{url}: refused to follow a redirect (HTTP {status}) to {}: redirects are never followed, register the final URL",
                            location.as_deref().unwrap_or("(no Location)")
                        ),
                    ),
                    s => self.failed(&mut notices, from, format!("{url}: HTTP {s}")),
                }
            }
            Err(e) => self.failed(&mut notices, from, format!("{url}: {e}")),
        }
        if ok {
            self.failures = 0;
            self.retry_at = None;
        }
        self.deliver(got, notices, stopping, emit)?;
        Ok(if got < HTTP_CHUNK {
            Progress::Idle
        } else {
            Progress::Busy
        })
    }

    /// A 200 answer to a `Range` request: the server sends the whole content. It is streamed:
    /// the `from` bytes already read are skipped (never held), and the rest is handed out in
    /// pieces of at most [`HTTP_CHUNK`] bytes.
    fn whole_body(
        &mut self,
        mut resp: ureq::http::Response<ureq::Body>,
        from: u64,
        mut notices: Vec<Notice>,
        emit: &mut dyn FnMut(Batch) -> Result<()>,
        stopping: bool,
    ) -> Result<Progress> {
        use std::io::Read;
        let url = self.url.clone();
        if !self.no_ranges {
            self.no_ranges = true;
            notices.push(Notice {
                offset: from,
                message: format!("{url}: the server ignores Range requests (answers 200 with the whole content): each poll downloads it all again and skips the {from} bytes already read"),
            });
        }
        let mut body = resp.body_mut().as_reader();
        let skipped = match std::io::copy(&mut body.by_ref().take(from), &mut std::io::sink()) {
            Ok(n) => n,
            Err(e) => {
                self.failed(
                    &mut notices,
                    from,
                    format!("{url}: reading the response: {e}"),
                );
                self.deliver(0, notices, stopping, emit)?;
                return Ok(Progress::Idle);
            }
        };
        if skipped < from {
            notices.push(Notice {
                offset: from,
                message: format!("{url}: shorter ({skipped} bytes) than already read ({from}): truncated or replaced; reading from the start"),
            });
            self.restart();
            self.deliver(0, notices, stopping, emit)?;
            return Ok(Progress::Busy);
        }
        self.failures = 0;
        self.retry_at = None;
        loop {
            let mut piece = Vec::new();
            let read = body.by_ref().take(HTTP_CHUNK).read_to_end(&mut piece);
            let got = piece.len() as u64;
            self.partial.extend_from_slice(&piece);
            drop(piece);
            let last = match read {
                Ok(_) => got < HTTP_CHUNK,
                Err(e) => {
                    self.failed(
                        &mut notices,
                        self.partial_at,
                        format!("{url}: reading the response: {e}"),
                    );
                    true
                }
            };
            self.deliver(got, std::mem::take(&mut notices), stopping && last, emit)?;
            if last {
                return Ok(Progress::Idle);
            }
        }
    }

    /// Hands out the complete lines in the buffer (and the notices) as one batch.
    fn deliver(
        &mut self,
        got: u64,
        mut notices: Vec<Notice>,
        stopping: bool,
        emit: &mut dyn FnMut(Batch) -> Result<()>,
    ) -> Result<()> {
        let url = &self.url;
        let mut lines: Vec<TailLine> = Vec::new();
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
            notices.push(Notice {
                offset: self.partial_at,
                message: format!(
                    "{url}: line at byte {} is longer than {max_line} bytes; only its beginning is indexed",
                    self.partial_at
                ),
            });
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
                txn_ensemble: None,
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
        Ok(())
    }
}

/// The host of an http(s) URL (without brackets, lower case).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit('@').next()?;
    let host = match auth.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => auth.rsplit_once(':').map_or(auth, |(h, _)| h),
    };
    Some(host.to_ascii_lowercase())
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
        let backoff = self.retry_at.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        });
        poll.max(Duration::from_millis(500)).max(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// What a test server answers: given the request's `Range` start, the raw response.
    type Answer = dyn Fn(Option<u64>) -> Vec<u8> + Send + Sync;

    /// A local HTTP server answering every request with `answer`; counts the requests.
    fn server(answer: Arc<Answer>) -> (u16, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let Ok(c) = s.try_clone() else { return };
                    let mut r = BufReader::new(c);
                    let mut from = None;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                            from = v.split('-').next().and_then(|a| a.trim().parse().ok());
                        }
                    }
                    let _ = s.write_all(&answer(from));
                });
            }
        });
        (port, hits)
    }

    fn ok_200(body: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v
    }

    fn source(url: &str) -> HttpRange {
        let registry = Arc::new(Registry::load(&[] as &[&std::path::Path]).expect("formats"));
        let spec = FollowSpec {
            key: url.to_string(),
            node: "web".into(),
            ensemble: crate::event::default_ensemble(),
            format: None,
            tz: Tz::Utc,
            flush: Duration::from_secs(60),
            max_line: 1 << 20,
        };
        HttpRange::new(spec, url.to_string(), None, registry)
    }

    /// Polls `n` times: (events, notices).
    fn polls(src: &mut HttpRange, n: usize) -> (usize, Vec<String>) {
        let (mut events, mut notices) = (0, Vec::new());
        for _ in 0..n {
            let mut emit = |b: Batch| {
                events += b.events.len();
                notices.extend(b.notices.into_iter().map(|n| n.message));
                Ok(())
            };
            src.poll(&mut emit).expect("poll");
        }
        (events, notices)
    }

    fn lines(from: usize, n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for i in from..from + n {
            writeln!(
                v,
                "2026-11-25 06:00:00,{:03} INFO app.web: request {i} served {}",
                i % 1000,
                "x".repeat(60)
            )
            .expect("write");
        }
        v
    }

    /// Issue 15: a server that ignores `Range` on content over 8 MiB was asked again every
    /// 0.5 s forever and nothing was read (the answer was over the body limit). Its content is
    /// now streamed: everything is read, once, and what is appended later is read once more.
    #[test]
    fn a_server_ignoring_range_is_read_not_refetched_forever() {
        let n = 100_000; // ~10 MiB, over HTTP_CHUNK
        let body = Arc::new(Mutex::new(lines(0, n)));
        assert!(body.lock().expect("body").len() as u64 > HTTP_CHUNK);
        let b = body.clone();
        let (port, hits) = server(Arc::new(move |_| {
            ok_200(&b.lock().map(|b| b.clone()).unwrap_or_default())
        }));
        let mut src = source(&format!("http://127.0.0.1:{port}/web.log"));
        let (events, notices) = polls(&mut src, 3);
        // The last line's entry may still be assembled (a stack trace could follow).
        assert!(events >= n - 1, "{events} events of {n}: {notices:?}");
        assert!(
            notices.iter().any(|m| m.contains("ignores Range")),
            "{notices:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3, "one request per poll");
        body.lock().expect("body").extend(lines(n, 10));
        let (more, _) = polls(&mut src, 2);
        assert_eq!(events + more, n + 9, "the new lines once, nothing again");
    }

    /// Issue 15: redirects were followed (up to 10) without the allowlist: a 302 from an
    /// allowed host reached any address. Now none is followed; the refusal is reported.
    #[test]
    fn redirects_are_not_followed() {
        let (secret, secret_hits) = server(Arc::new(|_| ok_200(&lines(0, 5))));
        let to = format!("http://127.0.0.1:{secret}/latest/meta-data/");
        let (port, _) = server(Arc::new(move |_| {
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        }));
        let mut src = source(&format!("http://127.0.0.1:{port}/web.log"));
        let (events, notices) = polls(&mut src, 2);
        assert_eq!(
            secret_hits.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
        assert_eq!(events, 0);
        assert!(
            notices
                .iter()
                .any(|m| m.contains("redirect") && m.contains(&format!(":{secret}/latest"))),
            "{notices:?}"
        );
    }

    /// A failing server is asked again after a wait that doubles, not at every poll.
    #[test]
    fn failures_back_off() {
        let (port, hits) = server(Arc::new(|_| {
            b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }));
        let mut src = source(&format!("http://127.0.0.1:{port}/web.log"));
        let (_, notices) = polls(&mut src, 20);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "asked again before the backoff"
        );
        assert!(
            notices.iter().any(|m| m.contains("HTTP 500")),
            "{notices:?}"
        );
        assert!(src.idle_wait(Duration::from_millis(10)) >= Duration::from_millis(400));
    }

    /// Issue 15: a source is pinned to the addresses its host had when it was checked; the
    /// name is not resolved again (here it would not resolve at all).
    #[test]
    fn pinned_sources_connect_to_the_checked_address() {
        let (port, hits) = server(Arc::new(|_| ok_200(&lines(0, 5))));
        let url = format!("http://logs.pinned.invalid:{port}/web.log");
        let mut src =
            source(&url).pinned_to(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))]);
        let (events, notices) = polls(&mut src, 1);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{notices:?}");
        assert!(events >= 4, "{events} events: {notices:?}");
        // Without the pin the name does not resolve.
        let mut unpinned = source(&url);
        let (events, notices) = polls(&mut unpinned, 1);
        assert_eq!(events, 0);
        assert!(!notices.is_empty());
    }
}
