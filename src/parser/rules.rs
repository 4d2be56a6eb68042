//! Classification rules: message templates such as
//! `Expiring session 0x{session:hex}, timeout of {timeout_ms:int}ms exceeded` that give an entry
//! its dotted kind and extract typed attributes.
//!
//! Each rule's literal text feeds one Aho-Corasick automaton, so a message is only tried against
//! the few rules whose literals it contains (no per-rule regex scan of every line).

use std::collections::BTreeSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memmem;
use regex::Regex;
use serde::Deserialize;

use crate::event::Attrs;

use super::mention::Mention;
use super::template::{Outcome, Template};

/// A rule as written in a `parsers/*.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// The kind given to matching entries (`session.expired`).
    pub kind: String,
    /// A template the whole message headline must match.
    #[serde(rename = "match")]
    pub matches: Option<String>,
    /// A template that may match anywhere in the headline.
    pub contains: Option<String>,
    /// A raw regex (named groups = attributes) matched anywhere in the headline.
    pub regex: Option<String>,
    /// For `regex` rules: a literal every match contains (lets the rule be skipped cheaply).
    pub literal: Option<String>,
    /// A mention rule: the attribute that gets the hex value following one of `keys`
    /// (`session 0x…`, `sessionId=0x…`); matched natively, see [`super::mention`].
    pub mention: Option<String>,
    /// For `mention` rules: the words that may name the value.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Only entries whose logger ends with this name.
    pub logger: Option<String>,
    /// Constant attributes set on a match (`state = "looking"`).
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    /// Example messages this rule must classify (checked by `zklens formats --check` and tests).
    #[serde(default)]
    pub examples: Vec<String>,
    /// Free text for operators.
    pub note: Option<String>,
}

/// A named group of rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetDef {
    /// Name referred to by formats.
    pub name: String,
    /// Tried after every other ruleset of a format, whatever the order it is listed in
    /// (for last-resort extraction rules).
    #[serde(default)]
    pub fallback: bool,
    /// Rules, tried in order (first match wins).
    #[serde(default)]
    pub rule: Vec<RuleDef>,
}

/// Attribute names a rule may capture.
const ATTRS: &[&str] = &[
    "session",
    "zxid",
    "epoch",
    "server",
    "leader",
    "peer",
    "path",
    "duration_ms",
    "timeout_ms",
    "state",
    // The same attribute written in decimal where ZooKeeper usually writes hex (3.4.0-3.4.2
    // printed zxids with `+ zxid`): `{zxid_dec}` / `(?P<zxid_dec>\d+)` set `zxid`.
    "zxid_dec",
    "session_dec",
];

/// Compiles a template into (template, regex source, literal pieces).
fn compile_template(t: &str, anchored: bool) -> Result<(Template, String, Vec<String>), String> {
    let tpl = Template::parse(t, anchored, ATTRS)?;
    let re = tpl.regex();
    let lits = tpl.literals();
    Ok((tpl, re, lits))
}

#[derive(Debug)]
struct Compiled {
    /// For `match` templates and anchored regexes: the literal text the message must start with.
    prefix: Option<String>,
    kind: Arc<str>,
    re: LazyRegex,
    /// The attributes its matches capture.
    names: Vec<String>,
    /// The template, when the native matcher can decide it (else the regex does).
    tpl: Option<Template>,
    /// A mention rule's native matcher (its regex is the reference).
    mention: Option<Mention>,
    /// A literal every match contains (fallback rules check it before anything else).
    literal: Option<memmem::Finder<'static>>,
    logger: Option<String>,
    set: Vec<(String, String)>,
    origin: String,
}

/// A rule's regex, compiled the first time it is needed.
#[derive(Debug)]
struct LazyRegex {
    src: String,
    re: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn new(src: String) -> LazyRegex {
        LazyRegex {
            src,
            re: std::sync::OnceLock::new(),
        }
    }

    /// Sets the regex compiled already.
    fn set(&self, re: Regex) {
        let _ = self.re.set(Some(re));
    }

    /// The regex (`None` if its source does not compile: a generated regex that would be a
    /// bug, which the tests rule out by compiling every embedded rule's).
    fn get(&self) -> Option<&Regex> {
        self.re.get_or_init(|| Regex::new(&self.src).ok()).as_ref()
    }
}

/// A compiled set of rules (one per format: the union of its rulesets, in order).
///
/// The first matching rule (in order) wins; rules from fallback rulesets then fill attributes
/// the winner left empty. Candidates come from two prefilters: anchored rules by the message's
/// first two bytes, the others by their longest literal through one Aho-Corasick automaton,
/// which is only run when a literal rule could still come before the anchored winner.
#[derive(Debug)]
pub struct Classifier {
    rules: Vec<Compiled>,
    ac: Option<AhoCorasick>,
    /// literal pattern id -> rule index (rules that are not fallbacks)
    lit_rule: Vec<usize>,
    /// literal pattern id -> the other literals that are prefixes of it
    lit_prefixes: Vec<Vec<usize>>,
    /// the smallest index in `lit_rule`
    first_lit: usize,
    /// rules without a usable prefilter (tried on every line), not fallbacks
    always: Vec<usize>,
    /// anchored rules by the first two bytes of the text they start with, not fallbacks
    by_prefix: std::collections::HashMap<[u8; 2], Vec<usize>>,
    /// fallback rules, in order
    fallbacks: Vec<usize>,
}

/// The outcome of classifying one message.
#[derive(Debug, Clone)]
pub struct Classified {
    /// The kind.
    pub kind: Arc<str>,
    /// Index of the rule that matched (for diagnostics).
    pub rule: usize,
}

/// A set of rule indices, on the stack for up to 512 rules.
struct RuleSet {
    small: [u64; 8],
    big: Vec<u64>,
}

impl RuleSet {
    fn new(n: usize) -> RuleSet {
        RuleSet {
            small: [0; 8],
            big: if n > 512 {
                vec![0; n.div_ceil(64)]
            } else {
                Vec::new()
            },
        }
    }
    fn words(&mut self) -> &mut [u64] {
        if self.big.is_empty() {
            &mut self.small
        } else {
            &mut self.big
        }
    }
    fn insert(&mut self, i: usize) {
        self.words()[i / 64] |= 1 << (i % 64);
    }
    /// The smallest member, removed.
    fn pop_first(&mut self) -> Option<usize> {
        for (w, word) in self.words().iter_mut().enumerate() {
            if *word != 0 {
                let b = word.trailing_zeros() as usize;
                *word &= *word - 1;
                return Some(w * 64 + b);
            }
        }
        None
    }
}

/// Captures of one match (at least as many as there are attributes).
const SLOTS: usize = 12;

/// The captures of one rule match: (attribute name, byte span), on the stack.
#[derive(Default, Clone, Copy)]
struct Caps<'a> {
    spans: [(&'a str, (usize, usize)); SLOTS],
    n: usize,
}

impl<'a> Caps<'a> {
    fn push(&mut self, name: &'a str, span: (usize, usize)) {
        if self.n < SLOTS {
            self.spans[self.n] = (name, span);
            self.n += 1;
        }
    }
    fn iter(&self) -> impl Iterator<Item = (&'a str, (usize, usize))> + '_ {
        self.spans[..self.n].iter().copied()
    }
}

impl Classifier {
    /// Compiles rules; `origin` names the rule in errors. Rules flagged `fallback` (from a
    /// fallback ruleset) classify only what no other rule did, and fill attributes the winning
    /// rule left empty.
    pub fn new(rules: &[(String, RuleDef, bool)]) -> Result<Classifier, String> {
        let mut compiled = Vec::new();
        let mut pats: Vec<String> = Vec::new();
        let mut lit_rule = Vec::new();
        let mut always = Vec::new();
        let mut fallbacks = Vec::new();
        let mut by_prefix: std::collections::HashMap<[u8; 2], Vec<usize>> = Default::default();
        for (i, (origin, r, fallback)) in rules.iter().enumerate() {
            let mut mention = None;
            let (tpl, src, lits) = match (&r.matches, &r.contains, &r.regex, &r.mention) {
                (Some(t), None, None, None) => {
                    compile_template(t, true).map(|(t, r, l)| (Some(t), r, l))
                }
                (None, Some(t), None, None) => {
                    compile_template(t, false).map(|(t, r, l)| (Some(t), r, l))
                }
                (None, None, None, Some(attr)) if ATTRS.contains(&attr.as_str()) => {
                    Mention::new(attr, &r.keys).map(|m| {
                        let src = m.regex();
                        mention = Some(m);
                        (None, src, Vec::new())
                    })
                }
                (None, None, None, Some(attr)) => {
                    Err(format!("unknown attribute {attr:?} in mention"))
                }
                (None, None, Some(re), None) => Ok((
                    None,
                    re.clone(),
                    r.literal
                        .clone()
                        .or_else(|| required_literal(re))
                        .into_iter()
                        .collect(),
                )),
                _ => Err("a rule needs exactly one of match, contains, regex, mention".to_string()),
            }
            .map_err(|e| format!("{origin}: rule {}: {e}", r.kind))?;
            // A rule the native matcher decides (a template, a mention) needs its regex only
            // when a template gives up: compiled then, not at start (most never are; compiling
            // them all was most of a process's start-up). Raw regexes are compiled and checked
            // now.
            let native = mention.is_some() || tpl.as_ref().is_some_and(Template::native);
            let re = LazyRegex::new(src);
            let names: Vec<String> = if native {
                match (&tpl, &mention) {
                    (Some(t), _) => t.names().to_vec(),
                    (None, Some(m)) => vec![m.attr().to_string()],
                    (None, None) => Vec::new(),
                }
            } else {
                let compiled =
                    Regex::new(&re.src).map_err(|e| format!("{origin}: rule {}: {e}", r.kind))?;
                let names: Vec<String> = compiled
                    .capture_names()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                re.set(compiled);
                names
            };
            for name in &names {
                if !ATTRS.contains(&name.as_str()) {
                    return Err(format!(
                        "{origin}: rule {}: unknown attribute group {name:?}",
                        r.kind
                    ));
                }
            }
            for k in r.set.keys() {
                if !ATTRS.contains(&k.as_str()) {
                    return Err(format!(
                        "{origin}: rule {}: unknown attribute {k:?} in set",
                        r.kind
                    ));
                }
            }
            if mention.is_none() && !r.keys.is_empty() {
                return Err(format!(
                    "{origin}: rule {}: keys belong to mention rules",
                    r.kind
                ));
            }
            let prefix = match (&tpl, &r.regex) {
                (Some(t), _) => t.prefix().filter(|p| !p.is_empty()).map(str::to_string),
                (None, Some(re)) => anchored_prefix(re),
                _ => None,
            };
            // A template whose names repeat cannot be told apart by slot: the regex decides.
            let tpl = tpl.filter(|t| {
                let mut seen = BTreeSet::new();
                t.native() && t.names().len() <= SLOTS && t.names().iter().all(|n| seen.insert(n))
            });
            let longest = lits.iter().max_by_key(|l| l.trim().len()).cloned();
            if *fallback {
                fallbacks.push(i);
            } else {
                // Anchored rules are found by the message's first bytes; the others by their
                // longest literal (the cheapest sufficient prefilter).
                match (&prefix, &longest) {
                    (Some(p), _) if p.len() >= 2 => {
                        let k = [p.as_bytes()[0], p.as_bytes()[1]];
                        by_prefix.entry(k).or_default().push(i);
                    }
                    (_, Some(l)) if l.trim().len() >= 3 => {
                        pats.push(l.clone());
                        lit_rule.push(i);
                    }
                    _ => always.push(i),
                }
            }
            compiled.push(Compiled {
                prefix,
                kind: Arc::from(r.kind.as_str()),
                re,
                names,
                tpl,
                mention,
                literal: longest
                    .filter(|l| !l.is_empty())
                    .map(|l| memmem::Finder::new(l.as_bytes()).into_owned()),
                logger: r.logger.clone(),
                set: r.set.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                origin: origin.clone(),
            });
        }
        let ac = if pats.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&pats)
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Classifier {
            rules: compiled,
            ac,
            lit_prefixes: pats
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (0..pats.len())
                        .filter(|&q| q != i && p.starts_with(pats[q].as_str()))
                        .collect()
                })
                .collect(),
            first_lit: lit_rule.iter().copied().min().unwrap_or(usize::MAX),
            lit_rule,
            always,
            by_prefix,
            fallbacks,
        })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Where rule `i` was defined.
    pub fn origin(&self, i: usize) -> &str {
        &self.rules[i].origin
    }

    /// Whether rule `r` applies to this logger and could match (cheap checks only).
    fn admits(r: &Compiled, headline: &str, logger: Option<&str>) -> bool {
        if let Some(want) = &r.logger {
            match logger {
                Some(l) if l.ends_with(want.as_str()) => {}
                _ => return false,
            }
        }
        r.prefix.as_deref().is_none_or(|p| headline.starts_with(p))
    }

    /// Matches rule `i` against `headline` and keeps its captures in `caps` (one pass: the
    /// native matcher, or the regex when the rule has no native template or it gave up).
    fn capture<'a>(
        &'a self,
        i: usize,
        headline: &str,
        logger: Option<&str>,
        caps: &mut Caps<'a>,
    ) -> bool {
        let r = &self.rules[i];
        caps.n = 0;
        if !Self::admits(r, headline, logger) {
            return false;
        }
        if let Some(m) = &r.mention {
            return match m.find(headline) {
                Some(sp) => {
                    caps.push(m.attr(), sp);
                    true
                }
                None => false,
            };
        }
        if let Some(t) = &r.tpl {
            let mut spans = [None; SLOTS];
            match t.matches(headline, &mut spans) {
                Outcome::Match => {
                    for (name, span) in t.names().iter().zip(spans) {
                        if let Some(sp) = span {
                            caps.push(name, sp);
                        }
                    }
                    return true;
                }
                Outcome::NoMatch => return false,
                Outcome::GaveUp => {}
            }
        }
        let Some(re) = r.re.get() else {
            return false;
        };
        let mut locs = re.capture_locations();
        if re.captures_read(&mut locs, headline).is_none() {
            return false;
        }
        for (g, name) in re.capture_names().enumerate() {
            if let (Some(name), Some(sp)) = (name, locs.get(g)) {
                caps.push(name, sp);
            }
        }
        true
    }

    /// Rules whose regex (compiled only when first needed) does not compile: `origin: kind:
    /// error` each. Run by `zklens formats --check` and the tests.
    pub fn regex_errors(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter_map(|r| match Regex::new(&r.re.src) {
                Ok(_) => None,
                Err(e) => Some(format!("{}: rule {}: {e}", r.origin, r.kind)),
            })
            .collect()
    }

    /// Classifies a message headline; fills `attrs` from the matching rule's captures.
    pub fn classify(
        &self,
        headline: &str,
        logger: Option<&str>,
        attrs: &mut Attrs,
    ) -> Option<Classified> {
        // 1. The first anchored (or unfiltered) rule that matches, in rule order.
        let anchored: &[usize] = match headline.as_bytes() {
            [a, b, ..] => self.by_prefix.get(&[*a, *b]).map_or(&[], Vec::as_slice),
            _ => &[],
        };
        let (mut x, mut y) = (0, 0);
        let mut winner = None;
        let mut caps = Caps::default();
        loop {
            let i = match (anchored.get(x), self.always.get(y)) {
                (Some(&a), Some(&b)) if a < b => {
                    x += 1;
                    a
                }
                (_, Some(&b)) => {
                    y += 1;
                    b
                }
                (Some(&a), None) => {
                    x += 1;
                    a
                }
                (None, None) => break,
            };
            if self.capture(i, headline, logger, &mut caps) {
                winner = Some(i);
                break;
            }
        }
        // 2. A literal rule before it takes precedence; the automaton only runs when one could.
        let limit = winner.unwrap_or(usize::MAX);
        if self.first_lit < limit {
            if let Some(ac) = &self.ac {
                let mut cands = RuleSet::new(self.rules.len());
                // Every (literal, start) pair: leftmost-longest from each start + 1 (a SIMD scan
                // where nothing matches), plus the literals that are prefixes of each one found.
                let mut at = 0;
                while let Some(m) = ac.find(aho_corasick::Input::new(headline).range(at..)) {
                    let p = m.pattern().as_usize();
                    for &q in std::iter::once(&p).chain(&self.lit_prefixes[p]) {
                        let r = self.lit_rule[q];
                        if r < limit {
                            cands.insert(r);
                        }
                    }
                    at = m.start() + 1;
                    if at >= headline.len() {
                        break;
                    }
                }
                let mut other = Caps::default();
                while let Some(i) = cands.pop_first() {
                    if self.capture(i, headline, logger, &mut other) {
                        winner = Some(i);
                        caps = other;
                        break;
                    }
                }
            }
        }
        let mut won = winner.map(|i| {
            let r = &self.rules[i];
            for (n, (a, b)) in caps.iter() {
                apply(attrs, n, &headline[a..b]);
            }
            for (k, v) in &r.set {
                apply(attrs, k, v);
            }
            Classified {
                kind: r.kind.clone(),
                rule: i,
            }
        });
        // 3. Fallback rules fill what is still missing; they classify only what nothing did.
        if let Some(c) = self.fill(headline, logger, attrs, &mut caps) {
            won.get_or_insert(c);
        }
        attrs.derive();
        won
    }

    /// Runs the fallback rules (mentions) on more of an entry's text — the lines after its
    /// headline (`caught end of stream exception` / `…client sessionid 0x…` on the next line)
    /// — filling only attributes still missing.
    pub fn fill_mentions(&self, text: &str, logger: Option<&str>, attrs: &mut Attrs) {
        let mut caps = Caps::default();
        self.fill(text, logger, attrs, &mut caps);
        attrs.derive();
    }

    /// The fallback rules on `headline`: fills missing attributes; the first that matched.
    fn fill<'a>(
        &'a self,
        headline: &str,
        logger: Option<&str>,
        attrs: &mut Attrs,
        caps: &mut Caps<'a>,
    ) -> Option<Classified> {
        let mut won = None;
        // Where the `0x`s are, found once for every mention rule (none: no mention can match).
        // (Up to 16 kept on the stack; a text with more is searched by each rule itself.)
        let mut hex: Option<([usize; 16], usize, bool)> = None;
        for &i in &self.fallbacks {
            let r = &self.rules[i];
            let filled = r.names.iter().all(|n| has(attrs, n));
            if filled {
                continue; // nothing left for it to fill
            }
            if let (Some(m), None) = (&r.mention, &r.logger) {
                let (at, n, more) = hex.get_or_insert_with(|| {
                    let mut at = [0usize; 16];
                    let mut n = 0;
                    for p in super::mention::hex_positions(headline.as_bytes()) {
                        if n == at.len() {
                            return (at, n, true);
                        }
                        at[n] = p;
                        n += 1;
                    }
                    (at, n, false)
                });
                if *n == 0 {
                    continue;
                }
                let found = if *more {
                    m.find(headline)
                } else {
                    m.find_at(headline, at[..*n].iter().copied())
                };
                let Some(span) = found else {
                    continue;
                };
                let mut extra = Attrs::default();
                apply(&mut extra, m.attr(), &headline[span.0..span.1]);
                attrs.fill_missing(extra);
                won.get_or_insert(Classified {
                    kind: r.kind.clone(),
                    rule: i,
                });
                continue;
            }
            if r.literal
                .as_ref()
                .is_some_and(|f| f.find(headline.as_bytes()).is_none())
            {
                continue;
            }
            if !self.capture(i, headline, logger, caps) {
                continue;
            }
            let mut extra = Attrs::default();
            for (n, (a, b)) in caps.iter() {
                apply(&mut extra, n, &headline[a..b]);
            }
            attrs.fill_missing(extra);
            if won.is_none() {
                won = Some(Classified {
                    kind: r.kind.clone(),
                    rule: i,
                });
            }
        }
        won
    }
}

/// The literal text a regex anchored with `^` requires at the start (`^Sending DIFF zxid=0x(...)`
/// → `Sending DIFF zxid=0x`), if any.
pub fn anchored_prefix(re: &str) -> Option<String> {
    let rest = re.strip_prefix('^')?;
    let cs: Vec<char> = rest.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < cs.len() {
        let (c, next) = match cs[i] {
            '\\' => match cs.get(i + 1) {
                Some(n) if !n.is_ascii_alphanumeric() => (*n, i + 2),
                _ => break,
            },
            '.' | '[' | '(' | ')' | '*' | '+' | '?' | '{' | '|' | '$' | '^' => break,
            c => (c, i + 1),
        };
        if matches!(cs.get(next), Some('?' | '*' | '{')) {
            break; // optional: not required
        }
        out.push(c);
        if cs.get(next) == Some(&'+') {
            break;
        }
        i = next;
    }
    (!out.is_empty()).then_some(out)
}

/// The longest run of plain characters a regex requires at its top level (outside groups,
/// classes and optional atoms), or `None` when it cannot tell (alternation, flags).
pub fn required_literal(re: &str) -> Option<String> {
    let cs: Vec<char> = re.chars().collect();
    if re.starts_with("(?i") || re.contains("(?i") {
        return None;
    }
    let mut best = String::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut i = 0;
    let flush = |cur: &mut String, best: &mut String| {
        if cur.len() > best.len() {
            *best = cur.clone();
        }
        cur.clear();
    };
    while i < cs.len() {
        let c = cs[i];
        // Is the atom at i followed by a quantifier that makes it optional or repeated?
        let atom_end;
        let mut lit: Option<char> = None;
        match c {
            '\\' => {
                let n = *cs.get(i + 1)?;
                atom_end = i + 2;
                if depth == 0 && !n.is_ascii_alphanumeric() {
                    lit = Some(n);
                }
            }
            '(' => {
                depth += 1;
                flush(&mut cur, &mut best);
                i += 1;
                continue;
            }
            ')' => {
                depth = depth.saturating_sub(1);
                flush(&mut cur, &mut best);
                i += 1;
                continue;
            }
            '[' => {
                // skip the class
                let mut j = i + 1;
                if cs.get(j) == Some(&']') {
                    j += 1;
                }
                while j < cs.len() && cs[j] != ']' {
                    if cs[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                atom_end = j + 1;
            }
            '|' if depth == 0 => return None,
            '^' | '$' | '.' | '|' => atom_end = i + 1,
            _ => {
                atom_end = i + 1;
                if depth == 0 {
                    lit = Some(c);
                }
            }
        }
        let q = cs.get(atom_end).copied();
        let optional = matches!(q, Some('?' | '*' | '{'));
        let repeated = matches!(q, Some('+'));
        match lit {
            Some(l) if !optional => {
                cur.push(l);
                if repeated {
                    flush(&mut cur, &mut best);
                }
            }
            _ => flush(&mut cur, &mut best),
        }
        i = atom_end;
        // Step over the quantifier (and a lazy/possessive marker after it).
        match q {
            Some('{') => {
                while i < cs.len() && cs[i] != '}' {
                    i += 1;
                }
                i += 1;
            }
            Some('?' | '*' | '+') => i += 1,
            _ => {}
        }
        if (optional || repeated) && matches!(cs.get(i), Some('?' | '+')) {
            i += 1;
        }
    }
    flush(&mut cur, &mut best);
    (best.trim().len() >= 3).then_some(best)
}

fn has(a: &Attrs, name: &str) -> bool {
    match name.strip_suffix("_dec").unwrap_or(name) {
        "session" => a.session.is_some(),
        "zxid" => a.zxid.is_some(),
        "epoch" => a.epoch.is_some(),
        "server" => a.server.is_some(),
        "leader" => a.leader.is_some(),
        "peer" => a.peer.is_some(),
        "path" => a.path.is_some(),
        "duration_ms" => a.duration_ms.is_some(),
        "timeout_ms" => a.timeout_ms.is_some(),
        "state" => a.state.is_some(),
        _ => false,
    }
}

fn num(v: &str, hex: bool) -> Option<u64> {
    let v = v.trim();
    if hex {
        let h = v.strip_prefix("0x").unwrap_or(v);
        u64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

/// Sets one attribute from captured text (ignored when it does not parse).
pub fn apply(a: &mut Attrs, name: &str, v: &str) {
    match name {
        "zxid_dec" => a.zxid = num(v, false),
        "session_dec" => a.session = num(v, false),
        "session" => a.session = num(v, true),
        "zxid" => a.zxid = num(v, true),
        "epoch" => a.epoch = num(v, !v.bytes().all(|b| b.is_ascii_digit())),
        "server" => a.server = num(v, false),
        "leader" => a.leader = num(v, false),
        "duration_ms" => a.duration_ms = num(v, false),
        "timeout_ms" => a.timeout_ms = num(v, false),
        "peer" => a.peer = Some(v.trim_end_matches(['.', ',']).to_string()),
        "path" => a.path = Some(v.to_string()),
        "state" => a.state = Some(v.trim().to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, m: &str) -> (String, RuleDef, bool) {
        (
            "test".into(),
            RuleDef {
                kind: kind.into(),
                matches: Some(m.into()),
                contains: None,
                regex: None,
                literal: None,
                mention: None,
                keys: vec![],
                logger: None,
                set: Default::default(),
                examples: vec![],
                note: None,
            },
            false,
        )
    }

    #[test]
    fn template_extracts_typed_attrs() {
        let c = Classifier::new(&[
            rule(
                "session.expired",
                "Expiring session 0x{session}, timeout of {timeout_ms}ms exceeded",
            ),
            rule("election.looking", "LOOKING"),
        ])
        .expect("compiles");
        let mut a = Attrs::default();
        let k = c
            .classify(
                "Expiring session 0x3000002f45e0000, timeout of 4000ms exceeded",
                None,
                &mut a,
            )
            .expect("classified");
        assert_eq!(&*k.kind, "session.expired");
        assert_eq!(a.session, Some(0x3000002f45e0000));
        assert_eq!(a.timeout_ms, Some(4000));
        let mut b = Attrs::default();
        assert_eq!(
            c.classify("LOOKING", None, &mut b)
                .map(|k| k.kind.to_string()),
            Some("election.looking".into())
        );
        assert!(c.classify("LOOKING around", None, &mut b).is_none());
    }

    #[test]
    fn regex_literals_are_found() {
        assert_eq!(
            required_literal(
                r"^Sending DIFF zxid=0x(?P<zxid>[0-9a-fA-F]+) +for peer sid: (?P<server>\d+)"
            )
            .as_deref(),
            Some("Sending DIFF zxid=0x")
        );
        assert_eq!(
            required_literal(r"^(?:Tracking|Committing) global session 0x(?P<s>[0-9a-f]+)")
                .as_deref(),
            Some(" global session 0x")
        );
        assert_eq!(
            required_literal(r"^New election\. My id = +(?P<s>\d+)").as_deref(),
            Some("New election. My id = ")
        );
        assert_eq!(
            required_literal(r"^\*+ GOODBYE (?:sid:)?(?P<p>\S+)").as_deref(),
            Some(" GOODBYE ")
        );
        assert_eq!(
            required_literal(r"^\w+ \(message format\)").as_deref(),
            Some(" (message format)")
        );
        assert_eq!(required_literal("a|bcdef"), None);
        assert_eq!(
            anchored_prefix(r"^Sending DIFF zxid=0x(?P<z>[0-9a-f]+)").as_deref(),
            Some("Sending DIFF zxid=0x")
        );
        assert_eq!(
            anchored_prefix(r"^New election\. My id = +(?P<s>\d+)").as_deref(),
            Some("New election. My id = ")
        );
        assert_eq!(anchored_prefix(r"^(?:Tracking|Committing) global"), None);
        assert_eq!(anchored_prefix(r"^ab?c"), Some("a".into()));
        assert_eq!(anchored_prefix("no anchor"), None);
        assert_eq!(required_literal("(?i)session"), None);
    }

    #[test]
    fn bad_definitions_are_reported() {
        assert!(Classifier::new(&[rule("x", "a {nosuch} b")]).is_err());
        assert!(Classifier::new(&[rule("x", "a {session:blob} b")]).is_err());
        assert!(Classifier::new(&[rule("x", "a {session b")]).is_err());
    }
}

#[cfg(test)]
mod prefilter_tests {
    use crate::parser::Registry;

    /// Every embedded rule has a prefilter (a literal prefix or a literal the Aho-Corasick
    /// automaton finds): none is tried on every line.
    #[test]
    fn no_embedded_rule_runs_on_every_line() {
        let reg = Registry::load(&[] as &[&str]).expect("embedded formats load");
        for f in reg.formats().iter().chain(std::iter::once(&reg.plain())) {
            let c = &f.classifier;
            let unfiltered: Vec<String> = c
                .always
                .iter()
                .map(|&i| format!("{} {}", c.rules[i].origin, c.rules[i].kind))
                .collect();
            assert!(
                unfiltered.is_empty(),
                "format {}: rules tried on every line: {unfiltered:?}",
                f.def.name
            );
        }
    }
}
