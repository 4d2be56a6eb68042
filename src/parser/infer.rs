//! Layout inference: when no shipped format fits a file, its layout is learned from a sample of
//! its lines and compiled into an ordinary [`Layout`](super::layout::Layout) pattern (or a JSON
//! field mapping), so a learned format has the same power as a shipped one.
//!
//! Each sample line is read left to right as a *header* of recognisable fields — a timestamp in
//! one of the common forms, a level word, bracketed fields (which may hold spaces, brackets and
//! parentheses: `[Thread-3 (zk_loop)]`, `[QuorumPeer[myid=1](plain=…):QuorumPeer@1455]`), logger
//! and class names, `file:line`, syslog's `host tag[pid]:` — and separators, up to the message.
//! The header shapes of the sample's lines are counted; the most common ones become candidate
//! patterns, and the caller scores them against the whole sample like any other format.

use super::format::JsonDef;

/// Timestamp forms tried at a header position, as [`TimeFormat`](crate::time::TimeFormat)
/// specs. `RFC3339` covers ISO 8601 with `T` or a space, `,` or `.` fractions of any length,
/// and an optional zone.
const TIME_SPECS: &[&str] = &[
    "RFC3339",
    "yyyy/MM/dd HH:mm:ss.SSS",
    "yyyy/MM/dd HH:mm:ss",
    "MMM d HH:mm:ss",
    "dd-MMM-yyyy HH:mm:ss.SSS",
    "dd-MMM-yyyy HH:mm:ss",
    "dd/MMM/yyyy:HH:mm:ss Z",
    "yyyy-MM-dd HH:mm",
];

/// Level words a header may hold (any case).
const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "CRITICAL", "CRIT",
    "FATAL", "SEVERE", "FINE", "FINER", "FINEST", "CONFIG", "ALERT", "EMERG",
];

/// File extensions of source files in `file:line` fields.
const SOURCE_EXTS: &[&str] = &[
    "py", "java", "go", "rs", "c", "cc", "cpp", "h", "scala", "kt", "js", "ts", "rb",
];

/// One piece of a learned header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Piece {
    Lit(String),
    /// A timestamp, with its spec.
    Time(String),
    Level,
    Thread,
    Logger,
    LineNo,
    Myid,
    /// A field that is matched and not kept, with a name for the pattern (`pid`, `host`).
    Skip(&'static str),
    Message,
}

/// A learned text layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedLayout {
    /// The layout as a log4j-style pattern (`%d{RFC3339} %p [%t] %c - %m`), which
    /// [`Layout::from_pattern`](super::layout::Layout::from_pattern) compiles.
    pub pattern: String,
    /// Sample lines whose header had exactly this shape.
    pub support: usize,
}

/// Candidate layouts learned from `sample` (lines without their terminators), most supported
/// first; at most `max` of them. Lines without a recognisable timestamp teach nothing.
pub fn learn_text(sample: &[&[u8]], max: usize) -> Vec<LearnedLayout> {
    let mut shapes: Vec<(Vec<Piece>, usize)> = Vec::new();
    for line in sample {
        let Some(text) = std::str::from_utf8(line).ok() else {
            continue;
        };
        let Some(shape) = header(text) else { continue };
        match shapes.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, n)) => *n += 1,
            None => shapes.push((shape, 1)),
        }
    }
    // Most supported first; on a tie, the shape with more fields (it explains more).
    shapes.sort_by(|a, b| {
        b.1.cmp(&a.1).then_with(|| {
            let fields = |s: &[Piece]| s.iter().filter(|p| !matches!(p, Piece::Lit(_))).count();
            fields(&b.0).cmp(&fields(&a.0))
        })
    });
    shapes
        .into_iter()
        .take(max)
        .map(|(s, support)| LearnedLayout {
            pattern: render(&s),
            support,
        })
        .collect()
}

/// Renders pieces as a pattern for [`Layout::from_pattern`](super::layout::Layout::from_pattern).
fn render(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        let conv = match p {
            Piece::Lit(l) => {
                out.push_str(&l.replace('%', "%%"));
                continue;
            }
            Piece::Time(spec) => format!("%d{{{spec}}}"),
            Piece::Level => "%p".into(),
            Piece::Thread => "%t".into(),
            Piece::Logger => "%c".into(),
            Piece::LineNo => "%L".into(),
            Piece::Myid => "%X{myid}".into(),
            Piece::Skip(name) => format!("%X{{{name}}}"),
            Piece::Message => "%m".into(),
        };
        out.push_str(&conv);
        // A literal starting with a letter or `{` would be read as part of the conversion.
        if let Some(Piece::Lit(next)) = pieces.get(i + 1) {
            if !matches!(p, Piece::Time(_) | Piece::Myid | Piece::Skip(_))
                && next
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'{')
            {
                out.push_str("{}");
            }
        }
    }
    out
}

/// A timestamp at the start of `s`: its spec and length. Epoch numbers count only in a
/// plausible range (2000 to 2100).
fn time_at(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.first().is_some_and(u8::is_ascii_digit) {
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let end_ok = |at: usize| b.get(at).is_none_or(|c| !c.is_ascii_alphanumeric());
        if digits == 10 {
            let frac = if b.get(10) == Some(&b'.') {
                b[11..].iter().take_while(|c| c.is_ascii_digit()).count()
            } else {
                0
            };
            let used = if frac > 0 { 11 + frac } else { 10 };
            let v: f64 = s[..10].parse().ok()?;
            if (946_684_800.0..4_102_444_800.0).contains(&v) && end_ok(used) {
                return Some(("epoch".into(), used));
            }
        }
        if digits == 13 && end_ok(13) {
            let v: f64 = s[..13].parse().ok()?;
            if (946_684_800_000.0..4_102_444_800_000.0).contains(&v) {
                return Some(("epoch_ms".into(), 13));
            }
        }
    }
    static COMPILED: std::sync::LazyLock<Vec<(&'static str, crate::time::TimeFormat)>> =
        std::sync::LazyLock::new(|| {
            TIME_SPECS
                .iter()
                .filter_map(|s| Some((*s, crate::time::TimeFormat::compile(s).ok()?)))
                .collect()
        });
    for (spec, f) in COMPILED.iter() {
        if let Some((c, used)) = f.parse_prefix(b) {
            if !c.readable() {
                continue;
            }
            // An ISO time followed by a zone after a space (`22:02:29,123 +0100`): spell it
            // out with a fixed fraction so the zone is read.
            if *spec == "RFC3339" && c.offset.is_none() {
                if let Some(z) = spaced_zone(&b[used..]) {
                    let frac = iso_fraction_len(&b[..used]);
                    let sep = if b.get(10) == Some(&b'T') { "'T'" } else { " " };
                    let dot = if frac > 0 {
                        format!("{}{}", b[19] as char, "S".repeat(frac))
                    } else {
                        String::new()
                    };
                    return Some((format!("yyyy-MM-dd{sep}HH:mm:ss{dot} Z"), used + z));
                }
            }
            return Some((spec.to_string(), used));
        }
    }
    None
}

/// Digits of the fraction in an ISO timestamp's text (`…:29,123` → 3).
fn iso_fraction_len(t: &[u8]) -> usize {
    match t.get(19) {
        Some(b'.' | b',') => t[20..].iter().take_while(|c| c.is_ascii_digit()).count(),
        _ => 0,
    }
}

/// ` +0100` / ` -05:00` / ` Z` right after a time: the bytes it takes.
fn spaced_zone(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b' ') {
        return None;
    }
    let z = &b[1..];
    let n = match z.first()? {
        b'Z' => 1,
        b'+' | b'-' => {
            let d = z[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if d == 4 {
                5
            } else if d == 2 && z.get(3) == Some(&b':') && z[4..].len() >= 2 {
                6
            } else {
                return None;
            }
        }
        _ => return None,
    };
    z.get(n)
        .is_none_or(|c| *c == b' ' || *c == b']')
        .then_some(n + 1)
}

fn is_level(w: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w))
}

/// A logger or class name: identifier characters, at least one letter, and either a dot
/// (`kazoo.client`, `o.a.z.ClientCnxn`) or an inner capital (`QuorumPeer`).
fn is_logger(w: &str) -> bool {
    let b = w.as_bytes();
    if b.is_empty() || b.len() > 200 || !b[0].is_ascii_alphabetic() && b[0] != b'_' {
        return false;
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.' | b'-' | b'/'))
    {
        return false;
    }
    if b.last() == Some(&b'.') {
        return false;
    }
    w.contains('.')
        || b[1..].iter().any(u8::is_ascii_uppercase)
            && b.iter().any(u8::is_ascii_lowercase)
            && b.iter().all(|c| *c != b'-')
}

/// A plain name (`svc`, `root`, `calc-a`): a logger when the header around it says so.
fn is_name(w: &str) -> bool {
    let b = w.as_bytes();
    !b.is_empty()
        && b.len() <= 100
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'$'))
}

/// `file.py:123`: the length of the name part, when `w` is one.
fn file_line(w: &str) -> Option<usize> {
    let (name, line) = w.rsplit_once(':')?;
    let (_, ext) = name.rsplit_once('.')?;
    (!line.is_empty()
        && line.bytes().all(|c| c.is_ascii_digit())
        && SOURCE_EXTS.contains(&ext)
        && !name.contains(' '))
    .then_some(name.len())
}

/// The end (exclusive, after the closing bracket) of a bracketed field starting at `i`, with
/// nested brackets and parentheses balanced.
fn bracket_end(s: &[u8], i: usize) -> Option<usize> {
    let (mut sq, mut par) = (0i32, 0i32);
    for (k, &c) in s.iter().enumerate().skip(i).take(1024) {
        match c {
            b'[' => sq += 1,
            b']' => {
                sq -= 1;
                if sq == 0 {
                    return Some(k + 1);
                }
            }
            b'(' => par += 1,
            b')' => par -= 1,
            _ => {}
        }
        let _ = par;
    }
    None
}

/// Reads one line's header. `None` when it has no timestamp (a continuation line, or text
/// without a header).
fn header(line: &str) -> Option<Vec<Piece>> {
    let b = line.as_bytes();
    let mut out: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let mut saw_time = false;
    let flush = |out: &mut Vec<Piece>, lit: &mut String, p: Piece| {
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(lit)));
        }
        out.push(p);
    };
    // RFC 5424 / syslog priority: `<13>1 `.
    if b.first() == Some(&b'<') {
        let d = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if (1..=3).contains(&d) && b.get(1 + d) == Some(&b'>') {
            lit.push('<');
            flush(&mut out, &mut lit, Piece::Skip("pri"));
            lit.push('>');
            i = 2 + d;
            if b.get(i) == Some(&b'1') && b.get(i + 1) == Some(&b' ') {
                lit.push_str("1 ");
                i += 2;
            }
        }
    }
    let mut tokens = 0;
    let mut after_level = false;
    let mut after_logger = false;
    while i < b.len() && tokens < 16 {
        tokens += 1;
        // Separators: spaces, and a lone `:` or a run of `-` or `|` between spaces.
        let sep_start = i;
        loop {
            match b.get(i) {
                Some(b' ' | b'\t') => i += 1,
                Some(&c @ (b'-' | b'|' | b':')) if i > sep_start => {
                    let run = if c == b':' {
                        1
                    } else {
                        b[i..].iter().take_while(|x| **x == c).count()
                    };
                    if b.get(i + run).is_none_or(|x| *x == b' ') {
                        i += run;
                    } else {
                        break;
                    }
                }
                _ => break,
            }
        }
        let mut sep = &line[sep_start..i];
        if after_level || after_logger {
            after_logger = false;
            // Level padding (`%-5p`) varies from line to line: keep one space.
            if sep.starts_with(' ') {
                let t = sep.trim_start_matches(' ');
                lit.push(' ');
                sep = t;
            }
            after_level = false;
        }
        lit.push_str(sep);
        if i >= b.len() {
            break;
        }
        let rest = &line[i..];
        if !saw_time {
            if let Some((spec, used)) = time_at(rest) {
                let syslog_time = spec.starts_with("MMM") || rest.as_bytes().get(10) == Some(&b'T');
                flush(&mut out, &mut lit, Piece::Time(spec));
                saw_time = true;
                i += used;
                // syslog: `host tag[pid]: message` right after the time (the traditional
                // `Nov 24 22:02:29` or RSYSLOG_FileFormat's ISO time with a `T`).
                let tail = if syslog_time && out.len() <= 2 {
                    syslog_tail(&line[i..])
                } else {
                    None
                };
                if let Some((pieces, used)) = tail {
                    for p in pieces {
                        match p {
                            Piece::Lit(l) => lit.push_str(&l),
                            p => flush(&mut out, &mut lit, p),
                        }
                    }
                    i += used;
                    // The application's own header may follow (`INFO kazoo.client [...] msg`).
                    continue;
                }
                continue;
            }
        }
        if b[i] == b'[' {
            let Some(end) = bracket_end(b, i) else { break };
            let inner = &line[i + 1..end - 1];
            lit.push('[');
            if !saw_time {
                if let Some((spec, used)) = time_at(inner) {
                    if used == inner.len() {
                        flush(&mut out, &mut lit, Piece::Time(spec));
                        saw_time = true;
                        lit.push(']');
                        i = end;
                        continue;
                    }
                }
            }
            if is_level(inner.trim()) {
                flush(&mut out, &mut lit, Piece::Level);
            } else if let Some(v) = inner.strip_prefix("myid:") {
                if v.contains(['[', ']']) {
                    break;
                }
                lit.push_str("myid:");
                flush(&mut out, &mut lit, Piece::Myid);
            } else if !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_digit()) {
                flush(&mut out, &mut lit, Piece::Skip("pid"));
            } else if let Some(zk) = thread_class_line(inner) {
                for p in zk {
                    match p {
                        Piece::Lit(l) => lit.push_str(&l),
                        p => flush(&mut out, &mut lit, p),
                    }
                }
            } else if is_logger(inner) && inner.contains('.') {
                // `[kazoo.client]`; a bare `[MainThread]` is a thread.
                flush(&mut out, &mut lit, Piece::Logger);
            } else if inner.is_empty() {
                break;
            } else {
                flush(&mut out, &mut lit, Piece::Thread);
            }
            lit.push(']');
            i = end;
            continue;
        }
        let wend = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..wend];
        let bare = word.strip_suffix(':').unwrap_or(word);
        if is_level(bare) {
            // Right-aligned levels (`%5p`) pad on the left: one space, the field takes the rest.
            while lit.ends_with("  ") {
                lit.pop();
            }
            flush(&mut out, &mut lit, Piece::Level);
            if bare.len() < word.len() {
                lit.push(':');
            }
            after_level = true;
            i += wend;
            continue;
        }
        // `QuorumPeerConfig:177` (log4j `%c{1}:%L`).
        if let Some((class, line)) = bare.split_once(':') {
            if !line.is_empty()
                && line.bytes().all(|c| c.is_ascii_digit())
                && (is_logger(class) || is_name(class))
                && file_line(bare).is_none()
            {
                flush(&mut out, &mut lit, Piece::Logger);
                lit.push(':');
                flush(&mut out, &mut lit, Piece::LineNo);
                if bare.len() < word.len() {
                    lit.push(':');
                    i += wend;
                    break;
                }
                i += wend;
                continue;
            }
        }
        if let Some(n) = file_line(bare) {
            flush(&mut out, &mut lit, Piece::Skip("file"));
            lit.push(':');
            flush(&mut out, &mut lit, Piece::LineNo);
            let _ = n;
            if bare.len() < word.len() {
                lit.push(':');
                i += wend;
                break;
            }
            i += wend;
            continue;
        }
        // Past a level or a bracketed field, a plain name before `: ` or ` - ` is a logger too.
        let in_header = out
            .iter()
            .filter(|p| matches!(p, Piece::Level | Piece::Thread))
            .count()
            > 0;
        if is_logger(bare) || in_header && is_name(bare) {
            let next = &rest[wend..];
            if bare.len() < word.len() {
                // `kazoo.client: message`: the header ends here.
                flush(&mut out, &mut lit, Piece::Logger);
                lit.push(':');
                i += wend;
                break;
            }
            let bracket_next = next.starts_with(" [") && (bare.contains('.') || in_header);
            // A padded logger (`%-40.40logger : `) keeps one space; the field takes the rest.
            let padded = next.trim_start_matches(' ');
            if padded.starts_with("- ")
                || padded.starts_with("| ")
                || padded.starts_with(": ") && next.starts_with(' ')
                || bracket_next
            {
                flush(&mut out, &mut lit, Piece::Logger);
                after_logger = true;
                i += wend;
                continue;
            }
        }
        if !word.is_empty() && word.bytes().all(|c| c.is_ascii_digit()) {
            // A process or thread id, when more header follows it.
            // (past a `---` separator, as Spring Boot writes)
            let next = rest[wend..]
                .trim_start()
                .trim_start_matches(['-', '|'])
                .trim_start();
            let nw = next.split([' ', '\t']).next().unwrap_or("");
            if next.starts_with('[') || is_level(nw.strip_suffix(':').unwrap_or(nw)) {
                flush(&mut out, &mut lit, Piece::Skip("pid"));
                i += wend;
                continue;
            }
        }
        break;
    }
    if !saw_time {
        return None;
    }
    // What is left of the separators before the message stays a literal.
    if i < b.len() {
        let ws = line[i..].len() - line[i..].trim_start_matches([' ', '\t']).len();
        // Keep at most one run of spaces that always precedes the message.
        lit.push_str(&line[i..i + ws]);
    }
    flush(&mut out, &mut lit, Piece::Message);
    // A logger after the message, in parentheses (Kafka's `... (kafka.server.ReplicaManager)`).
    if let Some(inner) = line.strip_suffix(')').and_then(|l| {
        let open = l.rfind(" (")?;
        Some(&l[open + 2..])
    }) {
        if is_logger(inner) && inner.contains('.') && !out.contains(&Piece::Logger) {
            out.extend([
                Piece::Lit(" (".into()),
                Piece::Logger,
                Piece::Lit(")".into()),
            ]);
        }
    }
    // Two loggers (syslog's tag, then the application's logger): the last one is the logger.
    let loggers = out.iter().filter(|p| **p == Piece::Logger).count();
    if loggers > 1 {
        let mut seen = 0;
        for p in out.iter_mut() {
            if *p == Piece::Logger {
                seen += 1;
                if seen < loggers {
                    *p = Piece::Skip("tag");
                }
            }
        }
    }
    Some(out)
}

/// ZooKeeper's `thread:Class@line` inside brackets.
fn thread_class_line(inner: &str) -> Option<Vec<Piece>> {
    let (head, line) = inner.rsplit_once('@')?;
    if line.is_empty() || !(line == "?" || line.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (thread, class) = head.rsplit_once(':')?;
    if thread.is_empty()
        || class.is_empty()
        || !class
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.'))
    {
        return None;
    }
    Some(vec![
        Piece::Thread,
        Piece::Lit(":".into()),
        Piece::Logger,
        Piece::Lit("@".into()),
        Piece::LineNo,
    ])
}

/// syslog after its time: ` host tag[pid]: ` or ` host tag: `.
fn syslog_tail(s: &str) -> Option<(Vec<Piece>, usize)> {
    let t = s.strip_prefix(' ')?;
    let (host, rest) = t.split_once(' ')?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        || is_level(host)
    {
        return None;
    }
    let colon = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(str::len))?;
    let tag = &rest[..colon];
    let mut pieces = vec![
        Piece::Lit(" ".into()),
        Piece::Skip("host"),
        Piece::Lit(" ".into()),
    ];
    let ok_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'/' | b'@'))
    };
    if let Some((name, pid)) = tag.split_once('[') {
        let pid = pid.strip_suffix(']')?;
        if !ok_name(name) || pid.is_empty() || !pid.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        pieces.extend([
            Piece::Logger,
            Piece::Lit("[".into()),
            Piece::Skip("pid"),
            Piece::Lit("]: ".into()),
        ]);
    } else {
        if !ok_name(tag) {
            return None;
        }
        pieces.extend([Piece::Logger, Piece::Lit(": ".into())]);
    }
    let used = 1 + host.len() + 1 + colon + 2;
    Some((pieces, used.min(s.len())))
}

/// Message keys tried first, in order, when learning a JSON mapping.
const JSON_MESSAGE: &[&str] = &["msg", "message", "event", "log", "text", "body", "@message"];
/// Logger keys.
const JSON_LOGGER: &[&str] = &[
    "logger",
    "logger_name",
    "name",
    "loggerName",
    "log.logger",
    "module",
];
/// Thread keys.
const JSON_THREAD: &[&str] = &["thread", "threadName", "thread_name", "process.thread.name"];

/// Learns a JSON-lines field mapping from `sample`: which key holds the time (the values parse
/// as timestamps), the level (level words), the message, the logger and the thread. `None`
/// when fewer than half of the lines are JSON objects.
pub fn learn_json(sample: &[&[u8]], base: &JsonDef) -> Option<JsonDef> {
    use std::collections::BTreeMap;
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = sample
        .iter()
        .filter_map(|l| serde_json::from_slice(l.trim_ascii()).ok())
        .collect();
    if objects.is_empty() || objects.len() * 2 < sample.len() {
        return None;
    }
    // key → (values seen, of which times, of which levels, total string length)
    let mut stats: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    for o in &objects {
        for (k, v) in o {
            let e = stats.entry(k.as_str()).or_default();
            e.0 += 1;
            match v {
                serde_json::Value::String(s) => {
                    if time_at(s).is_some_and(|(_, used)| used == s.len()) {
                        e.1 += 1;
                    }
                    if is_level(s) {
                        e.2 += 1;
                    }
                    e.3 += s.len();
                }
                serde_json::Value::Number(n) => {
                    let f = n.as_f64().unwrap_or(0.0);
                    let plausible = [1.0, 1e3, 1e6, 1e9]
                        .iter()
                        .any(|m| (946_684_800.0 * m..4_102_444_800.0 * m).contains(&f));
                    if plausible {
                        e.1 += 1;
                    }
                }
                _ => {}
            }
        }
    }
    let mostly = |n: usize, of: usize| of > 0 && n * 10 >= of * 9;
    let mut def = base.clone();
    let front = |list: &mut Vec<String>, k: &str| {
        list.retain(|x| x != k);
        list.insert(0, k.to_string());
    };
    let ts = stats
        .iter()
        .filter(|(_, s)| mostly(s.1, objects.len()))
        .map(|(k, _)| *k)
        .next()?;
    front(&mut def.ts, ts);
    if let Some((k, _)) = stats
        .iter()
        .find(|(_, s)| mostly(s.2, s.0) && s.0 * 2 >= objects.len())
    {
        front(&mut def.level, k);
    }
    let msg = JSON_MESSAGE
        .iter()
        .find(|k| stats.contains_key(**k))
        .map(|k| k.to_string())
        .or_else(|| {
            stats
                .iter()
                .filter(|(k, s)| **k != ts && s.3 > 0)
                .max_by_key(|(_, s)| s.3 / s.0.max(1))
                .map(|(k, _)| k.to_string())
        })?;
    front(&mut def.message, &msg);
    for (keys, list) in [
        (JSON_LOGGER, &mut def.logger),
        (JSON_THREAD, &mut def.thread),
    ] {
        if let Some(k) = keys.iter().find(|k| stats.contains_key(**k) && **k != msg) {
            front(list, k);
        }
    }
    Some(def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::layout::Layout;

    fn learn(lines: &[&str]) -> String {
        let s: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let got = learn_text(&s, 1);
        let l = got.first().expect("a layout is learned");
        let layout =
            Layout::from_pattern(&l.pattern, None).unwrap_or_else(|e| panic!("{}: {e}", l.pattern));
        for line in lines {
            assert!(
                layout.parse(line.as_bytes()).is_some(),
                "{} does not parse {line}",
                l.pattern
            );
        }
        l.pattern.clone()
    }

    #[test]
    fn python_thread_names_with_spaces_and_parentheses() {
        let p = learn(&[
            "2026-11-24 22:02:29,123 INFO [Thread-3 (zk_loop)] kazoo.client - Connecting to 127.0.0.1(127.0.0.1):2181, use_ssl: False",
            "2026-11-24 22:02:29,200 WARNING [MainThread] svc - role change: primary -> standby",
        ]);
        assert_eq!(p, "%d{RFC3339} %p [%t] %c - %m");
    }

    #[test]
    fn zookeeper_thread_with_brackets() {
        let p = learn(&[
            "2026-11-24T22:02:29.123+01:00 [myid:1] INFO [QuorumPeer[myid=1](plain=0.0.0.0:2181)(secure=disabled):QuorumPeer@1455] - LOOKING",
        ]);
        assert_eq!(p, "%d{RFC3339} [myid:%X{myid}] %p [%t:%c@%L] - %m");
    }

    #[test]
    fn logback_and_syslog_and_epoch() {
        assert_eq!(
            learn(&["2026-11-24 22:02:29.123 [zk worker 1] INFO  c.e.Svc - started"]),
            "%d{RFC3339} [%t] %p %c - %m"
        );
        assert_eq!(
            learn(&["Nov  4 22:02:29 host-3 calc-c[1234]: role change: standby -> primary"]),
            "%d{MMM d HH:mm:ss} %X{host} %c[%X{pid}]: %m"
        );
        assert_eq!(
            learn(&["Nov 29 22:58:09 localhost audit-1[18367]: INFO kazoo.client [Thread-3 (zk_loop)] Connecting to x"]),
            "%d{MMM d HH:mm:ss} %X{host} %X{tag}[%X{pid}]: %p %c [%t] %m"
        );
        assert_eq!(
            learn(&[
                "[main] 2026-11-29 22:58:04,654 INFO  QuorumPeerConfig:177 - Reading configuration"
            ]),
            "[%t] %d{RFC3339} %p %c:%L - %m"
        );
        assert_eq!(
            learn(&["2026-11-29T22:58:05.136+0000 INFO  [main] QuorumPeerConfig:177 - Reading"]),
            "%d{RFC3339} %p [%t] %c:%L - %m"
        );
        assert_eq!(
            learn(&[
                "2026-11-24 22:02:29.123  INFO 12345 --- [           main] o.a.c.f.state.ConnectionStateManager     : State change: SUSPENDED",
                "2026-11-24 22:02:30.123  WARN 12345 --- [ain-EventThread] o.a.c.f.s.ConnectionStateManager         : State change: LOST",
                "2026-11-24 22:02:31.123 ERROR 12345 --- [ain-EventThread] o.a.c.ConnectionState                    : Connection timed out",
            ]),
            "%d{RFC3339} %p %X{pid} --- [%t] %c : %m"
        );
        assert_eq!(
            learn(&[
                "[2026-11-24 22:02:29,123] INFO [ReplicaManager broker=1] Stopped fetchers (kafka.server.ReplicaManager)",
                "[2026-11-24 22:02:30,123] WARN [ZooKeeperClient Kafka server] Session expired. (kafka.zookeeper.ZooKeeperClient)",
            ]),
            "[%d{RFC3339}] %p [%t] %m (%c)"
        );
        assert_eq!(
            learn(&["1732485749.123 ERROR svc.py:42 boom"]),
            "%d{epoch} %p %X{file}:%L %m"
        );
        assert_eq!(
            learn(&["[2026-11-24 22:02:29,123] [WARN] (main) hello"]),
            "[%d{RFC3339}] [%p] %m"
        );
        assert_eq!(
            learn(&["2026-11-24 22:02:29,123 +0100 INFO x.Y: hi"]),
            "%d{yyyy-MM-dd HH:mm:ss,SSS Z} %p %c: %m"
        );
    }

    #[test]
    fn no_time_no_layout() {
        let s: Vec<&[u8]> = vec![b"just words", b"\tat x.Y(Y.java:1)"];
        assert!(learn_text(&s, 3).is_empty());
    }

    #[test]
    fn json_keys_from_values() {
        let lines: Vec<&[u8]> = vec![
            br#"{"event": "became PRIMARY", "level": "info", "timestamp": "2026-11-24T22:02:29.123Z", "logger": "svc"}"#,
            br#"{"event": "connected", "level": "warning", "timestamp": "2026-11-24T22:02:30.000Z", "logger": "svc"}"#,
        ];
        let d = learn_json(&lines, &JsonDef::default()).expect("learned");
        assert_eq!(d.ts.first().map(String::as_str), Some("timestamp"));
        assert_eq!(d.message.first().map(String::as_str), Some("event"));
        assert_eq!(d.level.first().map(String::as_str), Some("level"));
    }
}
