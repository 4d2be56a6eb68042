//! Parsers: turn the lines of one source into [`Event`]s.
//!
//! A [`Format`](format::Format) (from `parsers/*.toml`) says how a line is laid out and which
//! rules classify its message. An [`EntryParser`] applies one format to one source's lines in
//! order, folding continuation lines (stack traces) into the entry they belong to.

pub mod catalogue;
pub mod format;
pub mod infer;
pub mod layout;
pub mod mention;
pub mod rules;
pub mod template;

use std::borrow::Cow;
use std::sync::Arc;

use memchr::memmem;

use crate::event::{Attrs, Event, Level, KIND_LOG};
use crate::time::{Tz, ZoneConverter};
use format::{Format, JsonDef, Shape};

pub use format::Registry;

/// Where a source's events come from.
#[derive(Debug, Clone)]
pub struct SourceMeta {
    /// Node name (`zk1`).
    pub node: Arc<str>,
    /// The node's ensemble ([`crate::event::DEFAULT_ENSEMBLE`] unless the source names one).
    pub ensemble: Arc<str>,
    /// Source name (path or URL).
    pub source: Arc<str>,
    /// Zone of zone-less timestamps.
    pub tz: Tz,
}

/// Something worth telling the user about a source, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Byte offset in the source.
    pub offset: u64,
    /// What happened.
    pub message: String,
}

/// Parses one source's lines into events.
#[derive(Debug)]
pub struct EntryParser {
    format: Arc<Format>,
    meta: SourceMeta,
    zone: ZoneConverter,
    pending: Option<Event>,
    pending_dropped: usize,
    max_entry: usize,
    myid: Option<u64>,
    kind_log: Arc<str>,
    notices: Vec<Notice>,
    /// Thread and logger names seen (a few hundred distinct ones per file, shared by events).
    names: Interner,
}

/// Shares repeated strings (thread and logger names) between events: one allocation per
/// distinct name instead of one per event. Bounded: it starts over past [`Interner::MAX`] names.
#[derive(Debug, Default)]
struct Interner {
    set: std::collections::HashSet<Arc<str>, std::hash::BuildHasherDefault<Fnv>>,
    /// The last name interned per slot (0: thread, 1: logger).
    recent: [Option<Arc<str>>; 2],
}

impl Interner {
    const MAX: usize = 4096;

    /// Interns `s`, first comparing with the last name interned for the same `slot` (a
    /// logger or thread name usually repeats from one line to the next: no hashing then).
    fn intern_at(&mut self, slot: usize, s: &str) -> Arc<str> {
        if let Some(Some(a)) = self.recent.get(slot) {
            if **a == *s {
                return a.clone();
            }
        }
        let a = self.intern(s);
        if let Some(r) = self.recent.get_mut(slot) {
            *r = Some(a.clone());
        }
        a
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        if self.set.len() >= Self::MAX {
            self.set.clear();
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(a.clone());
        a
    }
}

/// FNV-1a: a fast hash for short keys (the names here are not attacker-chosen in bulk, and the
/// table is bounded).
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Largest message kept for one entry; the rest of a longer entry is dropped (and reported).
pub const DEFAULT_MAX_ENTRY: usize = 1 << 20;

impl EntryParser {
    /// A parser for one source.
    pub fn new(format: Arc<Format>, meta: SourceMeta) -> Self {
        EntryParser {
            zone: ZoneConverter::new(meta.tz),
            format,
            meta,
            pending: None,
            pending_dropped: 0,
            max_entry: DEFAULT_MAX_ENTRY,
            myid: None,
            kind_log: Arc::from(KIND_LOG),
            notices: Vec::new(),
            names: Interner::default(),
        }
    }

    /// The format in use.
    pub fn format(&self) -> &Arc<Format> {
        &self.format
    }

    /// Notices collected so far (drained).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Feeds one line (without its line terminator). Returns the previous entry when this line
    /// starts a new one.
    pub fn push(&mut self, line: &[u8], offset: u64, lineno: u64) -> Option<Event> {
        self.push_checked(line, std::str::from_utf8(line).ok(), offset, lineno)
    }

    /// [`push`](Self::push) for a caller that has already validated the line's UTF-8: `text` is
    /// the line as `str` when it is valid, `None` when it is not.
    pub fn push_checked(
        &mut self,
        line: &[u8],
        text: Option<&str>,
        offset: u64,
        lineno: u64,
    ) -> Option<Event> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = text.map(|t| t.strip_suffix('\r').unwrap_or(t));
        let format = self.format.clone();
        let fresh = match &format.shape {
            Shape::Text(layout) => layout
                .parse(line)
                .map(|p| self.entry_from_parts(line, text, &p, offset, lineno)),
            Shape::Json(j) => self.entry_from_json(line, j, offset, lineno),
            Shape::Plain => None,
        };
        let multiline = self.format.def.multiline;
        match fresh {
            Some(ev) => self.pending.replace(ev).map(|e| self.seal(e)),
            None if multiline && self.pending.is_some() => {
                self.append(line, offset);
                None
            }
            None if line.trim_ascii().is_empty() => None,
            None => {
                // A line no layout explains, with nothing to fold it into: an entry of its own.
                let ev = self.bare(line, offset, lineno);
                self.pending.replace(ev).map(|e| self.seal(e))
            }
        }
    }

    /// Where the entry being assembled (not handed out yet) starts: (byte offset, line number).
    /// A checkpoint must not pass it, or a restart would lose the entry.
    pub fn pending_start(&self) -> Option<(u64, u64)> {
        self.pending.as_ref().map(|e| (e.offset, e.line))
    }

    /// Ends the source: returns the last entry.
    pub fn finish(&mut self) -> Option<Event> {
        self.pending.take().map(|e| self.seal(e))
    }

    fn append(&mut self, line: &[u8], offset: u64) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let room = self.max_entry.saturating_sub(p.message.len() + 1);
        if room == 0 || self.pending_dropped > 0 {
            if self.pending_dropped == 0 {
                self.notices.push(Notice {
                    offset,
                    message: format!(
                        "entry starting at byte offset {} is longer than {} bytes; the rest is not indexed",
                        p.offset, self.max_entry
                    ),
                });
            }
            self.pending_dropped += line.len() + 1;
            return;
        }
        p.message.push('\n');
        let take = line.len().min(room);
        p.message.push_str(&String::from_utf8_lossy(&line[..take]));
        if take < line.len() {
            self.pending_dropped += line.len() - take;
            self.notices.push(Notice {
                offset,
                message: format!(
                    "entry starting at byte offset {} is longer than {} bytes; the rest is not indexed",
                    p.offset, self.max_entry
                ),
            });
        }
    }

    /// Classifies a finished entry.
    fn seal(&mut self, mut e: Event) -> Event {
        self.pending_dropped = 0;
        if e.myid.is_none() {
            e.myid = self.myid;
        }
        let mut attrs = Attrs::default();
        let classifier = &self.format.classifier;
        let logger = e.logger.as_deref();
        // One scan for the end of the headline; the lines after it, if any.
        let (headline, rest) = match memchr::memchr(b'\n', e.message.as_bytes()) {
            Some(i) => (&e.message[..i], Some(&e.message[i + 1..])),
            None => (e.message.as_str(), None),
        };
        let mut found = classifier.classify(headline, logger, &mut attrs);
        if found.as_ref().is_none_or(|c| &*c.kind == KIND_LOG) {
            // "Unexpected exception" + the exception's own message on the next line: the
            // second line says what happened.
            if let Some(second) = rest.map(|r| r.split('\n').next().unwrap_or(r)) {
                let mut a2 = Attrs::default();
                if let Some(c) = classifier.classify(second, logger, &mut a2) {
                    if &*c.kind != KIND_LOG {
                        found = Some(c);
                        attrs = a2;
                    }
                }
            }
        }
        if let Some(c) = found {
            e.kind = c.kind;
        }
        // Ids named after the headline (an exception's message on the next line).
        if attrs.session.is_none() || attrs.zxid.is_none() {
            if let Some(rest) = rest {
                classifier.fill_mentions(rest, logger, &mut attrs);
            }
        }
        // A JSON source may already carry attributes: keep them unless a rule found better ones.
        e.attrs.overlay(attrs);
        if &*e.kind == "election.leading" && e.attrs.leader.is_none() {
            e.attrs.leader = e.myid;
        }
        e.attrs.derive();
        e
    }

    fn base(&self, offset: u64, lineno: u64) -> Event {
        Event {
            ts: None,
            node: self.meta.node.clone(),
            ensemble: self.meta.ensemble.clone(),
            myid: None,
            source: self.meta.source.clone(),
            offset,
            line: lineno,
            level: None,
            thread: None,
            logger: None,
            message: String::new(),
            kind: self.kind_log.clone(),
            attrs: Attrs::default(),
            paths: Vec::new(),
            replicas: Vec::new(),
        }
    }

    fn bare(&self, line: &[u8], offset: u64, lineno: u64) -> Event {
        let mut e = self.base(offset, lineno);
        let take = line.len().min(self.max_entry);
        e.message = String::from_utf8_lossy(&line[..take]).into_owned();
        e
    }

    fn entry_from_parts(
        &mut self,
        line: &[u8],
        text: Option<&str>,
        p: &layout::Parts,
        offset: u64,
        lineno: u64,
    ) -> Event {
        // A field's text: a slice of the validated line, or a lossy copy of invalid bytes.
        let slice = |(a, b): (usize, usize)| match text.and_then(|t| t.get(a..b)) {
            Some(s) => Cow::Borrowed(s),
            None => String::from_utf8_lossy(&line[a..b]),
        };
        let names = &mut self.names;
        let mut txt = |slot: usize, r: Option<(usize, usize)>| {
            let s = slice(r?);
            let t = s.trim();
            (!t.is_empty()).then(|| names.intern_at(slot, t))
        };
        let thread = txt(0, p.thread);
        let logger = txt(1, p.logger);
        let mut e = self.base(offset, lineno);
        e.thread = thread;
        e.logger = logger;
        e.ts = p.time.as_ref().and_then(|c| self.zone.to_nanos(c));
        e.level = p
            .level
            .and_then(|(a, b)| std::str::from_utf8(&line[a..b]).ok())
            .and_then(Level::parse);
        let (ma, mb) = p.message;
        let mb = mb.min(ma + self.max_entry);
        e.message = slice((ma, mb)).into_owned();
        let myid = p
            .myid
            .and_then(|(a, b)| std::str::from_utf8(&line[a..b]).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .or_else(|| e.thread.as_deref().and_then(myid_in_thread));
        if let Some(id) = myid {
            self.myid = Some(id);
        }
        e.myid = myid;
        e
    }

    fn entry_from_json(
        &mut self,
        line: &[u8],
        j: &JsonDef,
        offset: u64,
        lineno: u64,
    ) -> Option<Event> {
        let t = line.trim_ascii();
        if t.first() != Some(&b'{') {
            return None;
        }
        // Keys and values borrowed from the line (no tree of owned strings); a value is only
        // decoded when a field asks for it.
        let obj: json::Object<'_> = serde_json::from_slice(t).ok()?;
        let get = |keys: &[String]| keys.iter().find_map(|k| obj.get(k));
        let mut e = self.base(offset, lineno);
        e.ts = get(&j.ts).and_then(|v| json_time(&v, &self.zone));
        e.level = get(&j.level).and_then(|v| Level::parse(&v.text()));
        e.logger = get(&j.logger).map(|v| self.names.intern_at(1, &v.text()));
        e.thread = get(&j.thread).map(|v| self.names.intern_at(0, &v.text()));
        e.message = get(&j.message)
            .map(|v| v.text().into_owned())
            .unwrap_or_else(|| String::from_utf8_lossy(t).into_owned());
        for (attr, keys) in &j.attrs {
            if let Some(v) = get(keys) {
                rules::apply(&mut e.attrs, attr, &v.text());
            }
        }
        Some(e)
    }
}

/// A JSON timestamp: an ISO 8601 string, or seconds, milliseconds, microseconds or nanoseconds
/// since the epoch (by magnitude), as a number or a string of digits.
fn json_time(v: &json::Val<'_>, zone: &ZoneConverter) -> Option<i64> {
    // Out of the range an i64 of nanoseconds holds: no time (never clamped to 1677 or 2262).
    let from_number = |f: f64| {
        crate::time::nanos_from_f64(if f > 1e17 {
            f
        } else if f > 1e14 {
            f * 1e3
        } else if f > 1e11 {
            f * 1e6
        } else {
            f * 1e9
        })
    };
    match v {
        json::Val::Str(s) => {
            let b = s.as_bytes();
            match crate::time::TimeFormat::Iso8601.parse_prefix(b) {
                Some((c, _)) => zone.to_nanos(&c),
                None if !b.is_empty() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') => {
                    from_number(s.parse().ok()?)
                }
                None => None,
            }
        }
        json::Val::Num(f, _) => from_number(*f),
        json::Val::Other(_) => None,
    }
}

/// Whether a JSON line is an entry of mapping `j` (`Some`), and whether it is read fully: its
/// time reads and its message is under a message key (for scoring a format on a sample).
fn json_entry_timed(line: &[u8], j: &JsonDef) -> Option<bool> {
    let t = line.trim_ascii();
    if t.first() != Some(&b'{') {
        return None;
    }
    let obj: json::Object<'_> = serde_json::from_slice(t).ok()?;
    let has = |keys: &[String]| keys.iter().any(|k| obj.get(k).is_some());
    if !has(&j.message) && !has(&j.ts) {
        return None;
    }
    let zone = ZoneConverter::new(Tz::Utc);
    Some(
        has(&j.message)
            && j.ts
                .iter()
                .find_map(|k| obj.get(k))
                .and_then(|v| json_time(&v, &zone))
                .is_some(),
    )
}

/// A JSON object read without building a tree: keys and raw values borrowed from the line.
mod json {
    use std::borrow::Cow;

    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use serde_json::value::RawValue;

    /// The members of one object, in order (a later duplicate key does not replace an earlier
    /// one's position, but `get` returns the last, as a map would).
    pub struct Object<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

    /// A member's value, decoded.
    pub enum Val<'a> {
        Str(Cow<'a, str>),
        /// A number, and its JSON text.
        Num(f64, &'a str),
        /// Anything else, as its JSON text.
        Other(&'a str),
    }

    impl Val<'_> {
        /// The value as text (strings unquoted, anything else as its JSON).
        pub fn text(&self) -> Cow<'_, str> {
            match self {
                Val::Str(s) => Cow::Borrowed(s),
                Val::Num(_, raw) | Val::Other(raw) => Cow::Borrowed(raw),
            }
        }
    }

    impl<'a> Object<'a> {
        /// The last member named `key`.
        pub fn get(&self, key: &str) -> Option<Val<'a>> {
            let raw = self.0.iter().rev().find(|(k, _)| k == key)?.1.get();
            Some(match raw.as_bytes().first() {
                Some(b'"') => match raw.get(1..raw.len() - 1) {
                    Some(inner) if !inner.contains('\\') => Val::Str(Cow::Borrowed(inner)),
                    _ => Val::Str(Cow::Owned(serde_json::from_str::<String>(raw).ok()?)),
                },
                Some(b'-' | b'0'..=b'9') => match raw.parse::<f64>() {
                    Ok(f) => Val::Num(f, raw),
                    Err(_) => Val::Other(raw),
                },
                _ => Val::Other(raw),
            })
        }
    }

    impl<'de> Deserialize<'de> for Object<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Object<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Object<'de>, A::Error> {
                    let mut v = Vec::with_capacity(8);
                    while let Some(k) = a.next_key::<Key<'de>>()? {
                        let raw: &'de RawValue = a.next_value()?;
                        v.push((k.0, raw));
                    }
                    Ok(Object(v))
                }
            }
            d.deserialize_map(V)
        }
    }

    /// A key, borrowed unless it has escapes.
    struct Key<'a>(Cow<'a, str>);

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(s.to_string())))
                }
            }
            d.deserialize_str(V)
        }
    }
}

/// `QuorumPeer[myid=1](plain=...)` and `WorkerReceiver[myid=2]` carry the server id.
fn myid_in_thread(t: &str) -> Option<u64> {
    static MYID: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"myid="));
    let i = MYID.find(t.as_bytes())? + 5;
    let digits = t[i..].bytes().take_while(u8::is_ascii_digit).count();
    t[i..i + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(name: &str) -> EntryParser {
        let reg = Registry::load(&[] as &[&str]).expect("embedded formats load");
        let f = reg.get(name).expect("format exists");
        EntryParser::new(
            f,
            SourceMeta {
                node: Arc::from("zk1"),
                ensemble: crate::event::default_ensemble(),
                source: Arc::from("t.log"),
                tz: Tz::Utc,
            },
        )
    }

    fn run(p: &mut EntryParser, text: &str) -> Vec<Event> {
        let mut out = Vec::new();
        let mut off = 0u64;
        for (i, l) in text.split('\n').enumerate() {
            if let Some(e) = p.push(l.as_bytes(), off, i as u64 + 1) {
                out.push(e);
            }
            off += l.len() as u64 + 1;
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn stack_traces_fold_into_their_entry() {
        let mut p = parser("zookeeper-log4j");
        let text = "2026-11-24 22:02:29,123 [myid:2] - WARN  [QuorumPeer[myid=2](plain=[0:0:0:0:0:0:0:0]:2182)(secure=disabled):Follower@131] - Exception when following the leader\n\
             java.io.EOFException\n\
             \tat java.base/java.io.DataInputStream.readInt(DataInputStream.java:398)\n\
             2026-11-24 22:02:29,200 [myid:2] - INFO  [QuorumPeer[myid=2](plain=[0:0:0:0:0:0:0:0]:2182)(secure=disabled):QuorumPeer@1525] - LOOKING";
        let ev = run(&mut p, text);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].message.lines().count(), 3);
        assert_eq!(ev[0].myid, Some(2));
        let second = text.find("\n2026").map(|i| i as u64 + 1);
        assert_eq!(Some(ev[1].offset), second);
        assert_eq!(ev[1].line, 4);
        assert_eq!(&*ev[1].kind, "election.looking");
    }

    #[test]
    fn orphan_continuation_is_its_own_event() {
        let mut p = parser("zookeeper-log4j");
        let ev = run(
            &mut p,
            "\tat foo.Bar(Bar.java:1)\n2026-11-24 22:02:29,123 [myid:2] - INFO  [main:A@1] - hello",
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(&*ev[0].kind, "log");
        assert_eq!(ev[0].ts, None);
        assert_eq!(ev[1].message, "hello");
        assert_eq!(ev[1].offset, 24);
    }

    #[test]
    fn oversized_entry_is_capped_and_reported() {
        let mut p = parser("zookeeper-log4j");
        p.max_entry = 100;
        let long = "x".repeat(500);
        let ev = run(
            &mut p,
            &format!("2026-11-24 22:02:29,123 [myid:2] - INFO  [main:A@1] - {long}\n{long}"),
        );
        assert_eq!(ev.len(), 1);
        assert!(ev[0].message.len() <= 100);
        assert!(!p.take_notices().is_empty());
    }

    #[test]
    fn every_embedded_rule_example_classifies_as_its_rule() {
        let reg = Registry::load(&[] as &[&str]).expect("embedded formats load");
        let fails = format::check_examples(&reg);
        assert!(fails.is_empty(), "{}", fails.join("\n"));
        assert!(reg.rules().count() > 80);
    }

    fn one(reg: &Registry, line: &str) -> (String, Event) {
        let f = reg.detect(&[line.as_bytes()]);
        let name = f.def.name.clone();
        let mut p = EntryParser::new(
            f,
            SourceMeta {
                node: Arc::from("n"),
                ensemble: crate::event::default_ensemble(),
                source: Arc::from("s"),
                tz: Tz::Utc,
            },
        );
        let e = p.push(line.as_bytes(), 0, 1).or_else(|| p.finish());
        (name, e.expect("an event"))
    }

    #[test]
    fn each_format_is_detected_and_parsed() {
        let reg = Registry::load(&[] as &[&str]).expect("embedded formats load");
        let cases: &[(&str, &str, &str, Option<&str>, &str)] = &[
            (
                "2026-11-24 22:02:29,123 [myid:3] - INFO  [QuorumPeer[myid=3](plain=0.0.0.0:2183)(secure=disabled):QuorumPeer@1429] - FOLLOWING",
                "zookeeper-log4j", "election.following", Some("INFO"), "FOLLOWING",
            ),
            (
                "2026-11-24 22:02:29,123 - INFO  [QuorumPeer[myid=3](plain=0.0.0.0:2183)(secure=disabled):QuorumPeer@1429] - LEADING",
                "zookeeper-debian", "election.leading", Some("INFO"), "LEADING",
            ),
            (
                "2026-11-24 22:02:29,123 [myid:1] - DEBUG [main:Foo@12][ndc] - Closing session 0x100000a1b2c0000",
                "zookeeper-trace", "session.closed", Some("DEBUG"), "Closing session 0x100000a1b2c0000",
            ),
            (
                "2026-11-24 22:02:29,123 INFO audit.ZKAuditProvider: session=0x100000a1b2c0000\tuser=x\toperation=create",
                "python-logging", "log", Some("INFO"), "session=0x100000a1b2c0000\tuser=x\toperation=create",
            ),
            (
                "2026-11-24 22:02:29,123 WARNING kazoo.client: Connection dropped: socket connection broken",
                "python-logging", "client.disconnected", Some("WARN"), "Connection dropped: socket connection broken",
            ),
            (
                "2026-11-24 22:02:29,123 - kazoo.client - INFO - Zookeeper connection established, state: CONNECTED",
                "python-logging-dash", "client.connected", Some("INFO"), "Zookeeper connection established, state: CONNECTED",
            ),
            (
                "2026-11-24 22:02:29,123 [WARNING] kazoo.protocol.connection: Session has expired",
                "python-logging-bracket", "client.session_expired", Some("WARN"), "Session has expired",
            ),
            (
                "WARNING:kazoo.client:Connection dropped: socket connection broken",
                "python-basic", "client.disconnected", Some("WARN"), "Connection dropped: socket connection broken",
            ),
            (
                r#"{"ts":"2026-11-24T22:02:29.123Z","level":"INFO","logger":"store","msg":"role change: standby -> primary","session":"0x100000a1b2c0000"}"#,
                "jsonl", "service.role", Some("INFO"), "role change: standby -> primary",
            ),
            ("just some words", "plain", "log", None, "just some words"),
        ];
        for (line, fmt, kind, level, msg) in cases {
            let (name, e) = one(&reg, line);
            assert_eq!(&name, fmt, "{line}");
            assert_eq!(&*e.kind, *kind, "{line}");
            assert_eq!(e.level.map(|l| l.as_str()), *level, "{line}");
            assert_eq!(&e.message, msg, "{line}");
            if *fmt != "plain" && *fmt != "python-basic" {
                assert_eq!(e.ts, Some(1_795_557_749_123_000_000), "{line}");
            }
        }
        let (_, audit) = one(&reg, cases[3].0);
        assert_eq!(audit.attrs.session, Some(0x100000a1b2c0000));
        let (_, e) = one(&reg, cases[8].0);
        assert_eq!(e.attrs.session, Some(0x100000a1b2c0000));
        assert_eq!(e.attrs.state.as_deref(), Some("standby -> primary"));
    }

    #[test]
    fn zone_option_shifts_local_times() {
        let reg = Registry::load(&[] as &[&str]).expect("embedded formats load");
        let f = reg.get("zookeeper-log4j").expect("format");
        let mut p = EntryParser::new(
            f,
            SourceMeta {
                node: Arc::from("zk1"),
                ensemble: crate::event::default_ensemble(),
                source: Arc::from("s"),
                tz: "+02:00".parse().expect("tz"),
            },
        );
        let e = p
            .push(
                b"2026-11-24 22:02:29,123 [myid:1] - INFO  [main:A@1] - x",
                0,
                1,
            )
            .or_else(|| p.finish())
            .expect("event");
        assert_eq!(e.ts, Some(1_795_557_749_123_000_000 - 7_200_000_000_000));
    }
}
