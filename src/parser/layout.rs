//! Line layouts: a log4j/logback `PatternLayout` (`%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`)
//! or a Python `logging` format (`%(asctime)s %(levelname)s %(name)s: %(message)s`) compiled into a
//! sequence of literals and fields, matched with a small backtracking scanner (no regex on the hot
//! path), or an explicit regex with named groups for anything else.

use memchr::memmem;
use regex::bytes::Regex;

use crate::time::{Civil, TimeFormat};

/// A field of a line layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The timestamp.
    Time,
    /// The level (may be padded with spaces).
    Level,
    /// The thread name (may contain anything, including `:` and `]`).
    Thread,
    /// Logger or class name (no white space).
    Logger,
    /// Source line number (digits or `?`).
    LineNo,
    /// The `myid` MDC value (a server id, or `host:port` in client logs, or empty).
    Myid,
    /// The rest of the line.
    Message,
    /// Anything else the layout prints (NDC, other MDC keys, relative time): matched, not kept.
    Skip,
}

#[derive(Debug, Clone)]
enum Token {
    Lit(Box<memmem::Finder<'static>>),
    Field(Field),
}

/// The parts of a line a layout found (byte ranges into the line).
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// Timestamp fields.
    pub time: Option<Civil>,
    /// Level text range.
    pub level: Option<(usize, usize)>,
    /// Thread range.
    pub thread: Option<(usize, usize)>,
    /// Logger range.
    pub logger: Option<(usize, usize)>,
    /// myid range.
    pub myid: Option<(usize, usize)>,
    /// Message range.
    pub message: (usize, usize),
}

/// A compiled layout.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Literal/field sequence from a pattern.
    Pattern {
        /// The tokens.
        tokens: Vec<TokenSeq>,
        /// Timestamp format.
        time: TimeFormat,
    },
    /// A regex with named groups `ts`, `level`, `thread`, `logger`, `myid`, `msg`.
    Regex {
        /// The regex.
        re: Regex,
        /// How to read the `ts` group.
        time: TimeFormat,
    },
}

/// Opaque compiled token (public only so [`Layout`] can be matched on).
#[derive(Debug, Clone)]
pub struct TokenSeq(Token);

impl Layout {
    /// Compiles a log4j/logback or Python logging pattern. `time_override` replaces the date
    /// pattern given inside `%d{...}` / implied by `%(asctime)s`.
    pub fn from_pattern(pattern: &str, time_override: Option<&str>) -> Result<Layout, String> {
        let b = pattern.as_bytes();
        let mut tokens: Vec<Token> = Vec::new();
        let mut lit = Vec::new();
        let mut time_spec: Option<String> = None;
        let mut i = 0;
        let push = |tokens: &mut Vec<Token>, lit: &mut Vec<u8>, f: Option<Field>| {
            if !lit.is_empty() {
                tokens.push(Token::Lit(Box::new(
                    memmem::Finder::new(&std::mem::take(lit)).into_owned(),
                )));
            }
            if let Some(f) = f {
                tokens.push(Token::Field(f));
            }
        };
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            i += 1;
            if b.get(i) == Some(&b'%') {
                lit.push(b'%');
                i += 1;
                continue;
            }
            // Python: %(name)s
            if b.get(i) == Some(&b'(') {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b')')
                    .ok_or("unterminated %( in layout")?;
                let name = &pattern[i + 1..i + end];
                i += end + 1;
                // width/flags then conversion letter
                while i < b.len() && (b[i].is_ascii_digit() || b"-.#+ ".contains(&b[i])) {
                    i += 1;
                }
                i += 1; // conversion char (s, d, f)
                let f = match name {
                    "asctime" => {
                        time_spec.get_or_insert_with(|| "RFC3339".to_string());
                        Field::Time
                    }
                    "levelname" => Field::Level,
                    "name" => Field::Logger,
                    "message" => Field::Message,
                    "threadName" => Field::Thread,
                    "lineno" => Field::LineNo,
                    _ => Field::Skip,
                };
                push(&mut tokens, &mut lit, Some(f));
                continue;
            }
            // log4j: %[-][width][.max]conv[{opt}]
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'-' || b[i] == b'.') {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let conv = &pattern[start..i];
            let mut opt = None;
            if b.get(i) == Some(&b'{') {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("unterminated { in layout")?;
                opt = Some(&pattern[i + 1..i + end]);
                i += end + 1;
            }
            let f = match conv {
                "d" | "date" => {
                    let spec = match opt {
                        // A bare `%d` reads any ISO 8601 form (`,` or `.`, `T` or a space, a
                        // zone or none); `%d{ISO8601}` is log4j's exact form.
                        None | Some("") => "RFC3339",
                        Some("ISO8601") | Some("DEFAULT") => "ISO8601",
                        Some(s) => s,
                    };
                    time_spec = Some(spec.to_string());
                    Some(Field::Time)
                }
                "p" | "le" | "level" => Some(Field::Level),
                "t" | "thread" => Some(Field::Thread),
                "c" | "C" | "logger" | "class" | "lo" => Some(Field::Logger),
                "L" | "line" => Some(Field::LineNo),
                "X" | "mdc" if opt == Some("myid") => Some(Field::Myid),
                "m" | "msg" | "message" => Some(Field::Message),
                "n" => None,
                "" => return Err(format!("bad conversion at byte {start} of layout")),
                _ => Some(Field::Skip),
            };
            if f.is_none() && conv == "n" {
                continue;
            }
            push(&mut tokens, &mut lit, f);
        }
        push(&mut tokens, &mut lit, None);
        // Validate: two adjacent fields are ambiguous unless the first is the time.
        for w in tokens.windows(2) {
            if let (Token::Field(a), Token::Field(_)) = (&w[0], &w[1]) {
                if *a != Field::Time {
                    return Err("two fields with no literal between them".to_string());
                }
            }
        }
        if !tokens
            .iter()
            .any(|t| matches!(t, Token::Field(Field::Message)))
        {
            return Err("layout has no message field (%m / %(message)s)".to_string());
        }
        let spec = time_override
            .map(str::to_string)
            .or(time_spec)
            .unwrap_or_else(|| "ISO8601".to_string());
        Ok(Layout::Pattern {
            tokens: tokens.into_iter().map(TokenSeq).collect(),
            time: TimeFormat::compile(&spec)?,
        })
    }

    /// Compiles a regex layout; it must have a `msg` group.
    pub fn from_regex(re: &str, time: Option<&str>) -> Result<Layout, String> {
        let re = Regex::new(re).map_err(|e| e.to_string())?;
        if !re.capture_names().any(|n| n == Some("msg")) {
            return Err("regex layout needs a (?P<msg>...) group".to_string());
        }
        Ok(Layout::Regex {
            re,
            time: TimeFormat::compile(time.unwrap_or("RFC3339"))?,
        })
    }

    /// How many fields the layout names (a regex: its named groups).
    pub fn fields(&self) -> usize {
        match self {
            Layout::Pattern { tokens, .. } => tokens
                .iter()
                .filter(|t| matches!(t.0, Token::Field(_)))
                .count(),
            Layout::Regex { re, .. } => re.capture_names().flatten().count(),
        }
    }

    /// True when the layout begins with a timestamp (lines that do not are continuations).
    pub fn starts_with_time(&self) -> bool {
        match self {
            Layout::Pattern { tokens, .. } => {
                matches!(tokens.first(), Some(TokenSeq(Token::Field(Field::Time))))
            }
            Layout::Regex { .. } => false,
        }
    }

    /// Like [`parse`](Self::parse), but says why a line does not match: where the furthest
    /// attempt failed and what the layout expected there.
    pub fn explain(&self, line: &[u8]) -> Result<Parts, Mismatch> {
        match self {
            Layout::Pattern { tokens, time } => {
                let mut parts = Parts::default();
                let mut budget = 64u32;
                let mut trace = Furthest::default();
                if match_from(
                    tokens,
                    0,
                    line,
                    0,
                    time,
                    &mut parts,
                    &mut budget,
                    &mut trace,
                ) {
                    return Ok(parts);
                }
                let (column, ti, why) = trace.0.unwrap_or((0, 0, "a match"));
                let expected = if !why.is_empty() {
                    why.to_string()
                } else {
                    match tokens.get(ti) {
                        Some(TokenSeq(Token::Lit(l))) => {
                            format!("{:?}", String::from_utf8_lossy(l.needle()))
                        }
                        Some(TokenSeq(Token::Field(f))) => field_class(*f).to_string(),
                        None => "the end of the line".to_string(),
                    }
                };
                Err(Mismatch { column, expected })
            }
            Layout::Regex { .. } => self.parse(line).ok_or(Mismatch {
                column: 0,
                expected: "a match of the regex".to_string(),
            }),
        }
    }

    /// Matches a whole line (without its newline).
    pub fn parse(&self, line: &[u8]) -> Option<Parts> {
        match self {
            Layout::Pattern { tokens, time } => {
                // Fast reject: a layout that starts with a time needs a digit first.
                if self.starts_with_time()
                    && time.starts_with_digit()
                    && !line.first().is_some_and(u8::is_ascii_digit)
                {
                    return None;
                }
                let mut parts = Parts::default();
                let mut budget = 64u32;
                if match_from(tokens, 0, line, 0, time, &mut parts, &mut budget, &mut ()) {
                    Some(parts)
                } else {
                    None
                }
            }
            Layout::Regex { re, time } => {
                let caps = re.captures(line)?;
                let range = |n: &str| caps.name(n).map(|m| (m.start(), m.end()));
                let time = match caps.name("ts") {
                    Some(m) => {
                        let (c, used) = time.parse_prefix(m.as_bytes())?;
                        if used != m.len() {
                            return None;
                        }
                        Some(c)
                    }
                    None => None,
                };
                Some(Parts {
                    time,
                    level: range("level"),
                    thread: range("thread"),
                    logger: range("logger"),
                    myid: range("myid"),
                    message: range("msg").unwrap_or((line.len(), line.len())),
                })
            }
        }
    }
}

/// What a field holds, for explanations.
fn field_class(f: Field) -> &'static str {
    match f {
        Field::Level => "a level word",
        Field::Logger => "a logger name (letters, digits, `_$.-/`)",
        Field::LineNo => "a line number",
        Field::Thread => "a thread name",
        Field::Myid => "a myid value",
        Field::Time => "a timestamp",
        Field::Message | Field::Skip => "text",
    }
}

fn field_ok(f: Field, v: &[u8]) -> bool {
    match f {
        Field::Level => {
            let t = v.trim_ascii();
            !t.is_empty() && t.len() <= 11 && t.iter().all(u8::is_ascii_alphabetic)
        }
        Field::Logger => {
            // Padding after the name (`%-40.40logger`) is allowed, not inside it.
            let name = v.trim_ascii_end();
            !name.is_empty()
                && name.iter().all(|&c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.' | b'-' | b'/')
                })
        }
        Field::LineNo => !v.is_empty() && (v == b"?" || v.iter().all(u8::is_ascii_digit)),
        Field::Thread => !v.is_empty(),
        Field::Myid => !v.contains(&b']'),
        Field::Time | Field::Message | Field::Skip => true,
    }
}

fn set(parts: &mut Parts, f: Field, r: (usize, usize)) {
    match f {
        Field::Level => parts.level = Some(r),
        Field::Thread => parts.thread = Some(r),
        Field::Logger => parts.logger = Some(r),
        Field::Myid => parts.myid = Some(r),
        Field::Message => parts.message = r,
        Field::LineNo | Field::Time | Field::Skip => {}
    }
}

/// Where a match failed, for [`Layout::explain`]: the hot path uses `()`, which records
/// nothing and compiles away.
trait Trace {
    fn fail(&mut self, pos: usize, ti: usize, why: &'static str);
    /// A field's class was checked over `n` bytes (counted by tests: the work of a match).
    #[inline(always)]
    fn examined(&mut self, _n: usize) {}
}

impl Trace for () {
    #[inline(always)]
    fn fail(&mut self, _: usize, _: usize, _: &'static str) {}
}

/// The furthest failure seen: (byte position, token index, reason).
#[derive(Debug, Default)]
struct Furthest(Option<(usize, usize, &'static str)>);

impl Trace for Furthest {
    fn fail(&mut self, pos: usize, ti: usize, why: &'static str) {
        if self.0.is_none_or(|(p, _, _)| pos >= p) {
            self.0 = Some((pos, ti, why));
        }
    }
}

/// Why a layout does not read a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Byte offset in the line where the furthest attempt failed.
    pub column: usize,
    /// What the layout expected there.
    pub expected: String,
}

#[allow(clippy::too_many_arguments)]
fn match_from<T: Trace>(
    tokens: &[TokenSeq],
    ti: usize,
    line: &[u8],
    pos: usize,
    time: &TimeFormat,
    parts: &mut Parts,
    budget: &mut u32,
    trace: &mut T,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some(TokenSeq(tok)) = tokens.get(ti) else {
        if pos != line.len() {
            trace.fail(pos, ti, "the end of the line");
        }
        return pos == line.len();
    };
    match tok {
        Token::Lit(l) => {
            let l = l.needle();
            if !line[pos..].starts_with(l) {
                trace.fail(pos, ti, "");
                return false;
            }
            match_from(
                tokens,
                ti + 1,
                line,
                pos + l.len(),
                time,
                parts,
                budget,
                trace,
            )
        }
        Token::Field(Field::Time) => match time.parse_prefix(&line[pos..]) {
            Some((c, used)) => {
                parts.time = Some(c);
                match_from(tokens, ti + 1, line, pos + used, time, parts, budget, trace)
            }
            None => {
                trace.fail(pos, ti, "a timestamp");
                false
            }
        },
        Token::Field(f) => {
            let next = tokens.get(ti + 1).map(|t| &t.0);
            match next {
                None => {
                    // Last token: takes the rest of the line.
                    if field_ok(*f, &line[pos..]) {
                        set(parts, *f, (pos, line.len()));
                        true
                    } else {
                        trace.fail(pos, ti, field_class(*f));
                        false
                    }
                }
                Some(Token::Lit(l)) => {
                    // Each occurrence after the last, as `find_iter` gives them (without
                    // overlap), but without the copy of the searcher that makes.
                    let step = l.needle().len().max(1);
                    let mut from = pos;
                    // A myid value ends before the first `]`: found once, so each candidate end
                    // is checked in O(1) (checking every span anew was quadratic: a long value
                    // followed by many `] - `).
                    let myid_end = (*f == Field::Myid).then(|| {
                        let rest = line.get(pos..).unwrap_or_default();
                        let at = memchr::memchr(b']', rest);
                        trace.examined(at.map_or(rest.len(), |i| i + 1));
                        at.map_or(line.len(), |i| pos + i)
                    });
                    // A level may be padded with blanks; spans of blanks only are found in
                    // O(1) by where the blanks end (trimming each again was quadratic).
                    let blanks_end = (*f == Field::Level).then(|| {
                        let rest = line.get(pos..).unwrap_or_default();
                        let n = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
                        trace.examined(n + 1);
                        pos + n
                    });
                    while let Some(rel) = line.get(from..).and_then(|rest| l.find(rest)) {
                        let end = from + rel;
                        from = end + step;
                        let span = &line[pos..end];
                        let ok = match (myid_end, blanks_end) {
                            (Some(limit), _) => end <= limit,
                            (_, Some(blank)) if end <= blank => false,
                            _ => {
                                trace.examined(if *f == Field::Thread { 1 } else { span.len() });
                                field_ok(*f, span)
                            }
                        };
                        if !ok {
                            trace.fail(pos, ti, field_class(*f));
                            // Logger, line, level and myid fields are character classes: once a
                            // span fails, every longer span fails too.
                            let monotonic = match f {
                                Field::Logger | Field::LineNo => !span.is_empty(),
                                Field::Level => blanks_end.is_some_and(|b| end > b),
                                Field::Myid => true,
                                _ => false,
                            };
                            if monotonic {
                                return false;
                            }
                            continue;
                        }
                        set(parts, *f, (pos, end));
                        if match_from(tokens, ti + 1, line, end, time, parts, budget, trace) {
                            return true;
                        }
                        if *budget == 0 {
                            return false;
                        }
                    }
                    trace.fail(pos, ti + 1, "");
                    false
                }
                Some(Token::Field(_)) => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZK: &str = "%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n";

    fn s(line: &[u8], r: Option<(usize, usize)>) -> &str {
        r.map(|(a, b)| std::str::from_utf8(&line[a..b]).unwrap_or("?"))
            .unwrap_or("")
    }

    #[test]
    fn zookeeper_layout_with_colons_in_thread() {
        let l = Layout::from_pattern(ZK, None).expect("compiles");
        let line = b"2024-05-01 12:00:00,123 [myid:1] - INFO  [QuorumPeer[myid=1](plain=[0:0:0:0:0:0:0:0]:2181)(secure=disabled):QuorumPeer@1525] - LOOKING";
        let p = l.parse(line).expect("matches");
        assert_eq!(s(line, p.level).trim(), "INFO");
        assert_eq!(
            s(line, p.thread),
            "QuorumPeer[myid=1](plain=[0:0:0:0:0:0:0:0]:2181)(secure=disabled)"
        );
        assert_eq!(s(line, p.logger), "QuorumPeer");
        assert_eq!(s(line, p.myid), "1");
        assert_eq!(s(line, Some(p.message)), "LOOKING");
        assert_eq!(p.time.map(|t| t.second), Some(0));
    }

    #[test]
    fn message_may_contain_separators() {
        let l = Layout::from_pattern(ZK, None).expect("compiles");
        let line = b"2024-05-01 12:00:00,123 [myid:] - WARN  [main:Foo@1] - a [b:c@2] - d";
        let p = l.parse(line).expect("matches");
        assert_eq!(s(line, Some(p.message)), "a [b:c@2] - d");
        assert_eq!(s(line, p.myid), "");
    }

    #[test]
    fn debian_layout_rejects_upstream_line() {
        let deb = Layout::from_pattern("%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n", None)
            .expect("compiles");
        assert!(deb
            .parse(b"2024-05-01 12:00:00,123 [myid:1] - INFO  [main:A@1] - x")
            .is_none());
        assert!(deb
            .parse(b"2024-05-01 12:00:00,123 - INFO  [main:A@1] - x")
            .is_some());
    }

    #[test]
    fn python_logging_layout() {
        let l = Layout::from_pattern("%(asctime)s %(levelname)s %(name)s: %(message)s", None)
            .expect("compiles");
        let line = b"2026-11-24 22:02:29,123 WARNING kazoo.client: Connection dropped: socket connection broken";
        let p = l.parse(line).expect("matches");
        assert_eq!(s(line, p.level), "WARNING");
        assert_eq!(s(line, p.logger), "kazoo.client");
        assert_eq!(
            s(line, Some(p.message)),
            "Connection dropped: socket connection broken"
        );
        assert!(l
            .parse(b"\tat java.lang.Thread.run(Thread.java:750)")
            .is_none());
    }

    #[test]
    fn regex_layout() {
        let l = Layout::from_regex(r"^(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)$", Some("RFC3339"))
            .expect("compiles");
        let p = l
            .parse(b"2026-11-24T22:02:29Z INFO hello")
            .expect("matches");
        assert_eq!(p.time.map(|t| t.hour), Some(22));
        assert!(Layout::from_regex("(?P<x>.)", None).is_err());
    }

    #[test]
    fn hostile_line_is_bounded() {
        let l = Layout::from_pattern(ZK, None).expect("compiles");
        let mut line = b"2024-05-01 12:00:00,123 [myid:1] - INFO  [".to_vec();
        line.extend(std::iter::repeat_n(b':', 100_000));
        assert!(l.parse(&line).is_none());
    }

    /// Counts the bytes the field checks read.
    #[derive(Default)]
    struct Examined(usize);

    impl Trace for Examined {
        fn fail(&mut self, _: usize, _: usize, _: &'static str) {}
        fn examined(&mut self, n: usize) {
            self.0 += n;
        }
    }

    /// Bytes the field checks read to match `line` (or fail to).
    fn work(layout: &Layout, line: &[u8]) -> (bool, usize) {
        let Layout::Pattern { tokens, time } = layout else {
            panic!("a pattern layout");
        };
        let mut parts = Parts::default();
        let mut budget = 64u32;
        let mut seen = Examined::default();
        let matched = match_from(tokens, 0, line, 0, time, &mut parts, &mut budget, &mut seen);
        (matched, seen.0)
    }

    /// Issue 15: the `[myid:` field was checked anew over its whole span at every later `] - `,
    /// so a line of 1 MB (a long myid value, then `] - ` repeated) took 14 s in a debug build:
    /// quadratic. The work must be linear.
    #[test]
    fn myid_field_is_linear() {
        let l = Layout::from_pattern(ZK, None).expect("compiles");
        for filler in [&b"] - "[..], b"]] - ", b"x] - ] - "] {
            let mut line = b"2024-05-01 12:00:00,123 [myid:".to_vec();
            // A long myid value first: every later `] - ` rechecked it.
            line.resize(500_000, b'x');
            while line.len() < 1_000_000 {
                line.extend_from_slice(filler);
            }
            let (matched, examined) = work(&l, &line);
            assert!(!matched, "no level after any `] - `");
            assert!(
                examined <= 4 * line.len(),
                "{examined} bytes examined for a line of {}",
                line.len()
            );
            assert!(l.parse(&line).is_none());
        }
    }

    /// The same for a level field padded with blanks: every blank was a candidate end, and
    /// each rechecked all the blanks before it.
    #[test]
    fn blank_level_field_is_linear() {
        let l = Layout::from_pattern("%(asctime)s %(levelname)s %(name)s: %(message)s", None)
            .expect("compiles");
        let mut line = b"2024-05-01 12:00:00,123 ".to_vec();
        line.resize(100_000, b' ');
        let (matched, examined) = work(&l, &line);
        assert!(!matched);
        assert!(
            examined <= 4 * line.len(),
            "{examined} bytes examined for a line of {}",
            line.len()
        );
    }
}
