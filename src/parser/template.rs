//! Rule templates (`Expiring session 0x{session}, timeout of {timeout_ms}ms exceeded`): parsing,
//! compilation to the equivalent regex, and a native matcher that needs no regex engine.
//!
//! The native matcher is a small backtracking matcher over the template's pieces with the same
//! preferences as the regex it replaces (greedy fields try their longest run first, `any` its
//! shortest), so it reports the same captures; it is a few times faster than the regex engines
//! on the short headlines it sees. Its work is bounded: past a step budget it gives up and the
//! caller runs the regex, so no hostile line can make it slow.

use memchr::memmem;

/// What a placeholder matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `[0-9a-fA-F]+`
    Hex,
    /// `-?[0-9]+`
    Int,
    /// `\S+`
    Word,
    /// `/\S*`
    Path,
    /// `.*?` (shortest first)
    Any,
    /// `.*` (longest first)
    Rest,
}

impl FieldType {
    fn parse(t: &str) -> Option<FieldType> {
        Some(match t {
            "hex" => FieldType::Hex,
            "int" => FieldType::Int,
            "word" => FieldType::Word,
            "path" => FieldType::Path,
            "any" => FieldType::Any,
            "rest" => FieldType::Rest,
            _ => return None,
        })
    }

    fn regex(self) -> &'static str {
        match self {
            FieldType::Hex => "[0-9a-fA-F]+",
            FieldType::Int => "-?[0-9]+",
            FieldType::Word => r"\S+",
            FieldType::Path => r"/\S*",
            FieldType::Any => ".*?",
            FieldType::Rest => ".*",
        }
    }
}

/// The type a placeholder has when the template does not say.
fn default_type(name: &str) -> FieldType {
    match name {
        "session" | "zxid" => FieldType::Hex,
        "epoch" | "server" | "leader" | "duration_ms" | "timeout_ms" | "zxid_dec"
        | "session_dec" => FieldType::Int,
        "path" => FieldType::Path,
        "peer" => FieldType::Word,
        _ => FieldType::Any,
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    /// A placeholder; `slot` indexes [`Template::names`] (None: matched, not captured).
    Field {
        slot: Option<usize>,
        ty: FieldType,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    anchored: bool,
    /// An unanchored template's first literal, searched for (built once, not per match).
    first: Option<memmem::Finder<'static>>,
    /// Attribute names of the captured placeholders, by slot.
    names: Vec<String>,
}

/// Outcome of a native match attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It matches; the spans are filled.
    Match,
    /// It does not match.
    NoMatch,
    /// The step budget ran out: ask the regex.
    GaveUp,
}

/// Steps (field end positions tried) allowed per match attempt.
const BUDGET: u32 = 256;

impl Template {
    /// Parses a template; `anchored` templates must match the whole text (`match = ...`),
    /// others anywhere in it (`contains = ...`). `known` lists the attribute names allowed.
    pub fn parse(t: &str, anchored: bool, known: &[&str]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut names = Vec::new();
        let mut rest = t;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unterminated {{ in template {t:?}"))?
                + open;
            let inner = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if inner.is_empty() {
                return Err(format!("empty {{}} in template {t:?}"));
            }
            let (name, ty) = match inner.split_once(':') {
                Some((n, ty)) => (
                    n.trim(),
                    FieldType::parse(ty.trim()).ok_or_else(|| {
                        format!(
                            "unknown placeholder type {:?} in {t:?} (hex, int, word, path, any, rest)",
                            ty.trim()
                        )
                    })?,
                ),
                None => (inner.trim(), default_type(inner.trim())),
            };
            let slot = if name == "*" || name == "_" {
                None
            } else if known.contains(&name) {
                names.push(name.to_string());
                Some(names.len() - 1)
            } else {
                return Err(format!(
                    "unknown attribute {name:?} in {t:?} (known: {}, or * to skip)",
                    known.join(", ")
                ));
            };
            pieces.push(Piece::Field { slot, ty });
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        let first = match (anchored, pieces.first()) {
            (false, Some(Piece::Lit(l))) => Some(memmem::Finder::new(l.as_bytes()).into_owned()),
            _ => None,
        };
        Ok(Template {
            pieces,
            anchored,
            first,
            names,
        })
    }

    /// The equivalent regex source.
    pub fn regex(&self) -> String {
        let mut re = String::new();
        if self.anchored {
            re.push('^');
        }
        for p in &self.pieces {
            match p {
                Piece::Lit(l) => re.push_str(&regex::escape(l)),
                Piece::Field { slot: None, ty } => {
                    re.push_str(&format!("(?:{})", ty.regex()));
                }
                Piece::Field { slot: Some(s), ty } => {
                    re.push_str(&format!("(?P<{}>{})", self.names[*s], ty.regex()));
                }
            }
        }
        if self.anchored {
            re.push('$');
        }
        re
    }

    /// The literal pieces that are not blank.
    pub fn literals(&self) -> Vec<String> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Lit(l) if !l.trim().is_empty() => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    /// The literal text every match starts with (anchored templates only).
    pub fn prefix(&self) -> Option<&str> {
        match self.pieces.first() {
            Some(Piece::Lit(l)) if self.anchored => Some(l),
            _ => None,
        }
    }

    /// Attribute names by slot.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True when the native matcher can decide this template (an unanchored template must start
    /// with a literal, so that candidate starts are that literal's occurrences).
    pub fn native(&self) -> bool {
        self.anchored || matches!(self.pieces.first(), Some(Piece::Lit(_)))
    }

    /// Matches `text`, filling `spans[slot]` with the byte range of each captured placeholder.
    /// `spans` must have at least `names().len()` entries.
    pub fn matches(&self, text: &str, spans: &mut [Option<(usize, usize)>]) -> Outcome {
        let mut budget = BUDGET;
        if self.anchored {
            return self.at(0, text, 0, spans, &mut budget);
        }
        let Some(finder) = &self.first else {
            return Outcome::GaveUp;
        };
        let mut from = 0;
        while let Some(i) = finder.find(&text.as_bytes()[from..]) {
            let s = from + i;
            match self.at(0, text, s, spans, &mut budget) {
                Outcome::NoMatch => {}
                other => return other,
            }
            // Overlapping occurrences are candidate starts too.
            from = s + 1;
            if from > text.len() {
                break;
            }
        }
        Outcome::NoMatch
    }

    fn at(
        &self,
        i: usize,
        text: &str,
        pos: usize,
        spans: &mut [Option<(usize, usize)>],
        budget: &mut u32,
    ) -> Outcome {
        let Some(piece) = self.pieces.get(i) else {
            return if !self.anchored || pos == text.len() {
                Outcome::Match
            } else {
                Outcome::NoMatch
            };
        };
        let (slot, ty) = match piece {
            Piece::Lit(l) => {
                return if text.as_bytes()[pos..].starts_with(l.as_bytes()) {
                    self.at(i + 1, text, pos + l.len(), spans, budget)
                } else {
                    Outcome::NoMatch
                };
            }
            Piece::Field { slot, ty } => (*slot, *ty),
        };
        // The next literal's first byte: ends not followed by it cannot succeed.
        let next = match self.pieces.get(i + 1) {
            Some(Piece::Lit(l)) => l.as_bytes().first().copied(),
            _ => None,
        };
        let b = text.as_bytes();
        let line_end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |n| pos + n);
        // [lo, hi] = the ends the field's pattern allows (every char boundary in between).
        let (lo, hi) = match ty {
            FieldType::Hex => {
                let n = b[pos..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                if n == 0 {
                    return Outcome::NoMatch;
                }
                (pos + 1, pos + n)
            }
            FieldType::Int => {
                let s = pos + usize::from(b.get(pos) == Some(&b'-'));
                let n = b[s..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return Outcome::NoMatch;
                }
                (s + 1, s + n)
            }
            FieldType::Word | FieldType::Path => {
                if ty == FieldType::Path && b.get(pos) != Some(&b'/') {
                    return Outcome::NoMatch;
                }
                let run: usize = text[pos..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .map(char::len_utf8)
                    .sum();
                if run == 0 {
                    return Outcome::NoMatch;
                }
                (pos + 1, pos + run)
            }
            FieldType::Any | FieldType::Rest => (pos, line_end),
        };
        let last = i + 1 == self.pieces.len();
        let mut try_end = |end: usize, budget: &mut u32| -> Outcome {
            if !text.is_char_boundary(end) {
                return Outcome::NoMatch;
            }
            if *budget == 0 {
                return Outcome::GaveUp;
            }
            *budget -= 1;
            if let Some(s) = slot {
                spans[s] = Some((pos, end));
            }
            self.at(i + 1, text, end, spans, budget)
        };
        if last && self.anchored {
            // Only the end of the text can finish an anchored template.
            return if (lo..=hi).contains(&text.len()) {
                try_end(text.len(), budget)
            } else {
                Outcome::NoMatch
            };
        }
        // Candidate ends in preference order: every position in [lo, hi], or only those where
        // the next literal's first byte is (found with memchr, so skipping costs no steps).
        let top = (hi + 1).min(b.len());
        if ty == FieldType::Any {
            let mut end = lo;
            while end <= hi {
                if let Some(n) = next {
                    match memchr::memchr(n, &b[end.min(top)..top]) {
                        Some(k) => end += k,
                        None => break,
                    }
                }
                match try_end(end, budget) {
                    Outcome::NoMatch => {}
                    other => return other,
                }
                end += 1;
            }
        } else {
            let mut end = hi;
            while end >= lo {
                if let Some(n) = next {
                    match memchr::memrchr(n, &b[lo.min(top)..(end + 1).min(top)]) {
                        Some(k) => end = lo + k,
                        None => break,
                    }
                }
                match try_end(end, budget) {
                    Outcome::NoMatch => {}
                    other => return other,
                }
                if end == lo {
                    break;
                }
                end -= 1;
            }
        }
        Outcome::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KNOWN: &[&str] = &["session", "zxid", "server", "path", "peer", "state"];

    fn native(t: &Template, text: &str) -> Option<Option<Vec<Option<String>>>> {
        let mut spans = vec![None; t.names().len()];
        match t.matches(text, &mut spans) {
            Outcome::Match => Some(Some(
                spans
                    .iter()
                    .map(|s| s.map(|(a, b)| text[a..b].to_string()))
                    .collect(),
            )),
            Outcome::NoMatch => Some(None),
            Outcome::GaveUp => None,
        }
    }

    fn by_regex(t: &Template, text: &str) -> Option<Vec<Option<String>>> {
        let re = regex::Regex::new(&t.regex()).expect("template regex compiles");
        re.captures(text).map(|c| {
            t.names()
                .iter()
                .map(|n| c.name(n).map(|m| m.as_str().to_string()))
                .collect()
        })
    }

    #[test]
    fn same_captures_as_the_regex() {
        let cases: &[(&str, bool, &str)] = &[
            (
                "Expiring session 0x{session}, timeout of {*:int}ms exceeded",
                true,
                "Expiring session 0x3000002f45e0000, timeout of 4000ms exceeded",
            ),
            (
                "Sending {state:word} zxid=0x{zxid}",
                true,
                "Sending DIFF zxid=0x2000000c3",
            ),
            ("peer {peer}) x", true, "peer a)b) x"),
            ("a{state:any}b{path}", true, "xaqqbqb/zz"),
            ("a{state:any}b{path}", true, "aqqbqb/zz"),
            ("a{state:any}b{path}", true, "aqqb/bqb/zz"),
            (
                "session 0x{session}",
                false,
                "xx session 0x1f and session 0x2",
            ),
            ("aa{state:rest}", false, "baaa\nq"),
            ("n={server:int}.", true, "n=-12."),
            ("n={server:int}.", true, "n=-."),
            ("p {path}", true, "p /"),
            ("p {path} q", true, "p / q"),
            ("é{state:word}!", false, "xé日本!é!"),
        ];
        for (t, anchored, text) in cases {
            let tp = Template::parse(t, *anchored, KNOWN).expect("parses");
            assert_eq!(
                native(&tp, text),
                Some(by_regex(&tp, text)),
                "{t:?} on {text:?}"
            );
        }
    }

    #[test]
    fn hostile_lines_give_up_instead_of_spinning() {
        let tp = Template::parse("{state:any}a{path:any}b{peer:any}c", true, KNOWN).expect("ok");
        let text = "a".repeat(100_000);
        let mut spans = vec![None; 3];
        let t0 = std::time::Instant::now();
        assert_eq!(tp.matches(&text, &mut spans), Outcome::GaveUp);
        assert!(t0.elapsed().as_secs() < 5);
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab /=x]{1,3}",
            Just("{state:any}".to_string()),
            Just("{state:rest}".to_string()),
            Just("{session:hex}".to_string()),
            Just("{server:int}".to_string()),
            Just("{peer:word}".to_string()),
            Just("{path:path}".to_string()),
            Just("{*:word}".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_the_regex(
            pieces in proptest::collection::vec(piece(), 1..5),
            anchored in any::<bool>(),
            text in "[ab /=x0-9\\-é\n]{0,24}",
        ) {
            let t: String = pieces.concat();
            // One capture per attribute name (a regex cannot have two groups with one name).
            let tp = match Template::parse(&t, anchored, KNOWN) {
                Ok(tp) => tp,
                Err(_) => return Ok(()),
            };
            let mut seen = std::collections::HashSet::new();
            if !tp.names().iter().all(|n| seen.insert(n.clone())) || !tp.native() {
                return Ok(());
            }
            if let Some(n) = native(&tp, &text) {
                prop_assert_eq!(n, by_regex(&tp, &text), "template {:?} text {:?}", t, text);
            }
        }
    }
}
