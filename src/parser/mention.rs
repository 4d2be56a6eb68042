//! Mention rules: a hex id named anywhere in a message (`session 0x1000…`, `sessionId=0x…`,
//! `mzxid:0x…`), the last-resort extraction run on every line no other rule fully explained.
//!
//! A mention rule lists the words that may name the value (`keys`); it matches where a key
//! starts at an ASCII word boundary and is followed by optional whitespace, an optional `=` or
//! `:`, optional whitespace, `0x` and 1 to 16 hex digits ending at an ASCII word boundary.
//! That is exactly the regex
//! `(?-u:\b)(?:KEY1|KEY2|…)\s*[=:]?\s*0x(?P<attr>[0-9a-fA-F]{1,16})(?-u:\b)` with the keys
//! longest first, which [`Mention::regex`] builds and the tests compare against; the native
//! matcher finds the same (leftmost) match without a regex engine.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A compiled mention rule.
#[derive(Debug, Clone)]
pub struct Mention {
    /// The attribute the hex value goes to.
    attr: String,
    /// The keys, longest first (the order the regex alternation prefers).
    keys: Vec<String>,
    ac: AhoCorasick,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Skips Unicode whitespace (what the regex's `\s` matches) from `i`.
fn skip_ws(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() {
        if b[i] < 0x80 {
            if matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                i += 1;
                continue;
            }
            break;
        }
        match text[i..].chars().next() {
            Some(c) if c.is_whitespace() => i += c.len_utf8(),
            _ => break,
        }
    }
    i
}

impl Mention {
    /// A rule extracting `attr` after any of `keys`.
    pub fn new(attr: &str, keys: &[String]) -> Result<Mention, String> {
        if keys.is_empty() {
            return Err("a mention rule needs at least one key".into());
        }
        for k in keys {
            let ok = !k.is_empty()
                && k.bytes().next().is_some_and(is_word)
                && k.bytes().all(|b| is_word(b) || b == b' ');
            if !ok {
                return Err(format!(
                    "mention key {k:?}: keys are words (letters, digits, _), spaces between"
                ));
            }
        }
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        keys.dedup();
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&keys)
            .map_err(|e| e.to_string())?;
        Ok(Mention {
            attr: attr.to_string(),
            keys,
            ac,
        })
    }

    /// The attribute name.
    pub fn attr(&self) -> &str {
        &self.attr
    }

    /// The equivalent regex.
    pub fn regex(&self) -> String {
        let alts: Vec<String> = self.keys.iter().map(|k| regex::escape(k)).collect();
        format!(
            r"(?-u:\b)(?:{})\s*[=:]?\s*0x(?P<{}>[0-9a-fA-F]{{1,16}})(?-u:\b)",
            alts.join("|"),
            self.attr
        )
    }

    /// The span of the hex value of the leftmost mention in `text`.
    pub fn find(&self, text: &str) -> Option<(usize, usize)> {
        let b = text.as_bytes();
        // Every value starts with `0x`: a text without one names nothing (one SIMD scan,
        // before the keys' automaton).
        static HEX: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"0x"));
        HEX.find(b)?;
        // The leftmost key occurrence (a SIMD scan where there is none); at its start, the
        // keys that occur there, longest first (the alternation's order), until one leads to
        // a value; else on from the next byte.
        let mut at = 0;
        while at < b.len() {
            let m = self.ac.find(aho_corasick::Input::new(text).range(at..))?;
            let s = m.start();
            if s == 0 || !is_word(b[s - 1]) {
                for k in &self.keys {
                    if b[s..].starts_with(k.as_bytes()) {
                        if let Some(span) = self.value_after(text, s + k.len()) {
                            return Some(span);
                        }
                    }
                }
            }
            at = s + 1;
        }
        None
    }

    /// After a key ending at `i`: `\s*[=:]?\s*0x` then 1-16 hex digits ending at a boundary.
    fn value_after(&self, text: &str, i: usize) -> Option<(usize, usize)> {
        let b = text.as_bytes();
        let mut i = skip_ws(text, i);
        if matches!(b.get(i), Some(b'=' | b':')) {
            i = skip_ws(text, i + 1);
        }
        if b.get(i) != Some(&b'0') || b.get(i + 1) != Some(&b'x') {
            return None;
        }
        let start = i + 2;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_hexdigit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 16 || b.get(end).is_some_and(|&c| is_word(c)) {
            return None;
        }
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> Mention {
        let keys: Vec<String> = [
            "session",
            "Session",
            "sessionid",
            "sessionId",
            "Sessionid",
            "SessionId",
            "session id",
            "session Id",
            "Session id",
            "Session Id",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Mention::new("session", &keys).expect("valid")
    }

    fn by_regex(m: &Mention, text: &str) -> Option<(usize, usize)> {
        let re = regex::Regex::new(&m.regex()).expect("regex");
        re.captures(text)
            .and_then(|c| c.name(m.attr()))
            .map(|g| (g.start(), g.end()))
    }

    #[test]
    fn finds_the_forms_services_write() {
        let m = session();
        for (text, want) in [
            (
                "wrote /x mzxid=0x1 session 0x100000a1b2c0000",
                "100000a1b2c0000",
            ),
            ("sessionid:0x5000a1b2c480000 type:create", "5000a1b2c480000"),
            (
                "session id = 0x4000a1b2cba0000, negotiated",
                "4000a1b2cba0000",
            ),
            ("SessionId: 0xabc", "abc"),
            ("session 0x1 and session 0x2", "1"),
        ] {
            let (a, b) = m.find(text).expect(text);
            assert_eq!(&text[a..b], want, "{text}");
            assert_eq!(by_regex(&m, text), Some((a, b)), "{text}");
        }
        for text in [
            "nosession 0x1",
            "session 0x12345678901234567",
            "session 0xZ",
            "session 0x1g",
            "session",
        ] {
            assert_eq!(m.find(text), None, "{text}");
            assert_eq!(by_regex(&m, text), None, "{text}");
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Mention::new("session", &[]).is_err());
        assert!(Mention::new("session", &["se(ssion".into()]).is_err());
        assert!(Mention::new("session", &[" session".into()]).is_err());
    }

    proptest! {
        #[test]
        fn native_equals_regex(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("session".to_string()), Just("Session".to_string()),
                    Just("session id".to_string()), Just("sessionId".to_string()),
                    Just("0x".to_string()), Just(" ".to_string()), Just("=".to_string()),
                    Just(":".to_string()), Just("\u{2003}".to_string()), Just("_".to_string()),
                    Just("é".to_string()), "[0-9a-fA-F]{1,18}", "[a-z ]{0,4}",
                ],
                0..12,
            )
        ) {
            let m = session();
            let text: String = parts.concat();
            prop_assert_eq!(m.find(&text), by_regex(&m, &text), "{:?}", text);
        }
    }
}
