//! Mention rules: a hex id named anywhere in a message (`session 0x1000…`, `sessionId=0x…`,
//! `mzxid:0x…`), the last-resort extraction run on every line no other rule fully explained.
//!
//! A mention rule lists the words that may name the value (`keys`); it matches where a key
//! starts at an ASCII word boundary and is followed by optional whitespace, an optional `=` or
//! `:`, optional whitespace, `0x` and 1 to 16 hex digits ending at an ASCII word boundary.
//! That is exactly the regex
//! `(?-u:\b)(?:KEY1|KEY2|…)\s*[=:]?\s*0x(?P<attr>[0-9a-fA-F]{1,16})(?-u:\b)` with the keys
//! longest first, which [`Mention::regex`] builds and the tests compare against; the native
//! matcher finds the same (leftmost) match without a regex engine, starting from the `0x`s.

/// A compiled mention rule.
#[derive(Debug, Clone)]
pub struct Mention {
    /// The attribute the hex value goes to.
    attr: String,
    /// The keys, longest first (the order the regex alternation prefers).
    keys: Vec<String>,
    /// The keys grouped by their last byte, each group longest first.
    by_last: Vec<(u8, Vec<Box<[u8]>>)>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
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
                && k.bytes().last().is_some_and(is_word)
                && k.bytes().all(|b| is_word(b) || b == b' ')
                && !k.contains("0x");
            if !ok {
                return Err(format!(
                    "mention key {k:?}: keys are words (letters, digits, _), spaces between, without 0x"
                ));
            }
        }
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        keys.dedup();
        let mut by_last: Vec<(u8, Vec<Box<[u8]>>)> = Vec::new();
        for k in &keys {
            let Some(l) = k.bytes().last() else { continue };
            let kb: Box<[u8]> = k.as_bytes().into();
            match by_last.iter_mut().find(|(b, _)| *b == l) {
                Some((_, g)) => g.push(kb),
                None => by_last.push((l, vec![kb])),
            }
        }
        Ok(Mention {
            attr: attr.to_string(),
            keys,
            by_last,
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
    ///
    /// Every value starts with `0x`, so the search starts there: for each `0x` (left to right,
    /// one SIMD scan) whose hex digits make a value, the text before it, back over whitespace
    /// and one `=` or `:`, must end with a key (the longest that does, as the alternation
    /// prefers) that starts at a word boundary. Keys are words without `0x` in them, so the
    /// match of an earlier `0x` always starts before that of a later one: this is the regex's
    /// leftmost match.
    pub fn find(&self, text: &str) -> Option<(usize, usize)> {
        self.find_at(text, hex_positions(text.as_bytes()))
    }

    /// [`find`](Self::find) given the positions of the `0x`s in `text` (left to right), found
    /// once for every mention rule that reads the same text.
    pub fn find_at(
        &self,
        text: &str,
        hex: impl IntoIterator<Item = usize>,
    ) -> Option<(usize, usize)> {
        let b = text.as_bytes();
        for p in hex {
            let Some(span) = value_at(b, p) else { continue };
            let e = key_end(text, p);
            // Keys end with a word byte: the byte before `e` rules most of them out at once.
            let Some(&last) = e.checked_sub(1).and_then(|i| b.get(i)) else {
                continue;
            };
            let Some((_, group)) = self.by_last.iter().find(|(l, _)| *l == last) else {
                continue;
            };
            for kb in group {
                // (short keys: compared inline from the end, no memcmp call)
                if e >= kb.len()
                    && b[e - kb.len()..e]
                        .iter()
                        .rev()
                        .zip(kb.iter().rev())
                        .all(|(x, y)| x == y)
                {
                    let s = e - kb.len();
                    if s == 0 || !is_word(b[s - 1]) {
                        return Some(span);
                    }
                }
            }
        }
        None
    }
}

/// The positions of `0x` in `b`, left to right (one SIMD scan).
pub fn hex_positions(b: &[u8]) -> memchr::memmem::FindIter<'_, 'static> {
    static HEX: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"0x"));
    HEX.find_iter(b)
}

/// The hex digits of a value whose `0x` is at `p`: 1 to 16 of them, ending at a word boundary.
fn value_at(b: &[u8], p: usize) -> Option<(usize, usize)> {
    let start = p + 2;
    let n = b[start.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_hexdigit())
        .count();
    let end = start + n;
    if n == 0 || n > 16 || b.get(end).is_some_and(|&c| is_word(c)) {
        return None;
    }
    Some((start, end))
}

/// Where a key must end for a value at `p`: back over whitespace, one `=` or `:`, whitespace.
fn key_end(text: &str, p: usize) -> usize {
    let back_ws = |mut i: usize| {
        while let Some(c) = text[..i].chars().next_back() {
            if !c.is_whitespace() {
                break;
            }
            i -= c.len_utf8();
        }
        i
    };
    let mut e = back_ws(p);
    if e > 0 && matches!(text.as_bytes()[e - 1], b'=' | b':') {
        e = back_ws(e - 1);
    }
    e
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
