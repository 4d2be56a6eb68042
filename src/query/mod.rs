//! The query language and query execution.
//!
//! ```text
//! session:0x3000002f45e0000 kind:session.expired      both (implicit AND)
//! node:zk2 AND (level:WARN OR level:ERROR)            boolean operators, parentheses
//! kind:election.* -node:zk3 NOT level:DEBUG           wildcards on names, negation
//! "Expiring session" timeout                           phrases and words in the message
//! zxid:[0x100000000 TO 0x1ffffffff] epoch:>=2          ranges (inclusive [ ], exclusive { })
//! ts:>2026-11-24T22:02:00Z                             time ranges
//! ```
//! Ids are hex with `0x`, hex when they contain a-f, else decimal.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TokenStream;
use tantivy::{Index, Searcher, Term};

use crate::error::{Error, Result};
use crate::event::parse_id;
use crate::index::{Fields, IndexHandle};
use crate::time::{self, Tz};

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    /// All of these.
    And(Vec<Ast>),
    /// Any of these.
    Or(Vec<Ast>),
    /// Not this.
    Not(Box<Ast>),
    /// `field:value` or a bare word / phrase (field `None` = message).
    Term {
        /// Field name.
        field: Option<String>,
        /// Value.
        value: String,
        /// Written in quotes.
        quoted: bool,
    },
    /// `field:[a TO b]`, `field:>=a`, ...
    Range {
        /// Field name.
        field: String,
        /// Lower bound.
        lo: Bound<String>,
        /// Upper bound.
        hi: Bound<String>,
    },
    /// Everything.
    All,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Word(String, bool),
}

/// Tokens with the byte offset each starts at.
fn lex(s: &str) -> Result<Vec<(Tok, usize)>> {
    let (at, cs): (Vec<usize>, Vec<char>) = s.char_indices().unzip();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = at[i];
        match c {
            '(' => {
                out.push((Tok::LParen, start));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, start));
                i += 1;
            }
            '-' if i + 1 < cs.len() && !cs[i + 1].is_whitespace() => {
                out.push((Tok::Not, start));
                i += 1;
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                while i < cs.len() && cs[i] != '"' {
                    if cs[i] == '\\' && i + 1 < cs.len() {
                        i += 1;
                    }
                    v.push(cs[i]);
                    i += 1;
                }
                if i >= cs.len() {
                    return Err(Error::Query("unterminated quote".into()));
                }
                i += 1;
                out.push((Tok::Word(v, true), start));
            }
            _ => {
                // A word; `field:"quoted value"` and `field:[a TO b]` stay one word.
                let mut v = String::new();
                let mut quoted = false;
                while i < cs.len() && !cs[i].is_whitespace() && cs[i] != '(' && cs[i] != ')' {
                    if cs[i] == ':' && matches!(cs.get(i + 1), Some('"')) {
                        v.push(':');
                        i += 2;
                        while i < cs.len() && cs[i] != '"' {
                            v.push(cs[i]);
                            i += 1;
                        }
                        if i >= cs.len() {
                            return Err(Error::Query("unterminated quote".into()));
                        }
                        i += 1;
                        quoted = true;
                        break;
                    }
                    if cs[i] == ':' && matches!(cs.get(i + 1), Some('[' | '{')) {
                        let close = if cs[i + 1] == '[' {
                            [']', '}']
                        } else {
                            ['}', ']']
                        };
                        while i < cs.len() && !close.contains(&cs[i]) {
                            v.push(cs[i]);
                            i += 1;
                        }
                        if i >= cs.len() {
                            return Err(Error::Query(format!("unterminated range in {v:?}")));
                        }
                        v.push(cs[i]);
                        i += 1;
                        break;
                    }
                    v.push(cs[i]);
                    i += 1;
                }
                let t = match v.as_str() {
                    "AND" | "&&" => Tok::And,
                    "OR" | "||" => Tok::Or,
                    "NOT" | "!" => Tok::Not,
                    _ => Tok::Word(v, quoted),
                };
                out.push((t, start));
            }
        }
    }
    Ok(out)
}

/// Deepest nesting of parentheses and negations a query may have. The parser and the
/// compiler recurse once per level; a query nested thousands deep used to overflow the
/// stack and abort the process (`zklens serve` included).
pub const MAX_DEPTH: usize = 64;

/// Most terms (`field:value`, words, phrases, ranges) one query may have: each becomes at
/// least one query clause, scorer and posting-list cursor.
pub const MAX_TERMS: usize = 1024;

/// Most terms the wildcards of one query may expand into, over all its wildcards on keyword
/// fields (`kind:client.*` becomes a union of every matching kind): each expanded term is a
/// term query with its own posting-list cursor, so `kind:*` repeated a thousand times cost
/// seconds and hundreds of MB per request.
pub const MAX_EXPANDED_TERMS: usize = 4096;

struct P {
    toks: Vec<(Tok, usize)>,
    i: usize,
    /// Parentheses and negations open around the current token.
    depth: usize,
    /// Terms read so far.
    terms: usize,
    /// The query's length in bytes (where "the end" is).
    len: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }
    /// Byte offset of the current token (the query's length at the end).
    fn at(&self) -> usize {
        self.toks.get(self.i).map_or(self.len, |t| t.1)
    }
    /// One more level of nesting at the current token, refused past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::Query(format!(
                "nested deeper than {MAX_DEPTH} levels of parentheses and negations (the limit) at byte offset {}",
                self.at()
            )));
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Ast> {
        let mut v = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.i += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Ast::Or(v)
        })
    }
    fn and(&mut self) -> Result<Ast> {
        let mut v = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.i += 1;
                    v.push(self.unary()?);
                }
                Some(Tok::Word(..) | Tok::Not | Tok::LParen) => v.push(self.unary()?),
                _ => break,
            }
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Ast::And(v)
        })
    }
    fn unary(&mut self) -> Result<Ast> {
        match self.toks.get(self.i).map(|t| t.0.clone()) {
            Some(Tok::Not) => {
                self.deeper()?;
                self.i += 1;
                let a = Ast::Not(Box::new(self.unary()?));
                self.depth -= 1;
                Ok(a)
            }
            Some(Tok::LParen) => {
                self.deeper()?;
                self.i += 1;
                let a = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(Error::Query(format!(
                        "missing ) at byte offset {}",
                        self.at()
                    )));
                }
                self.i += 1;
                self.depth -= 1;
                Ok(a)
            }
            Some(Tok::Word(w, quoted)) => {
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(Error::Query(format!(
                        "more than {MAX_TERMS} terms (the limit) at byte offset {}",
                        self.at()
                    )));
                }
                self.i += 1;
                term(&w, quoted)
            }
            Some(t) => Err(Error::Query(format!(
                "unexpected {t:?} at byte offset {}",
                self.at()
            ))),
            None => Err(Error::Query("query ends too early".into())),
        }
    }
}

fn term(w: &str, quoted: bool) -> Result<Ast> {
    if !quoted && w == "*" {
        return Ok(Ast::All);
    }
    if quoted && !w.contains(':') {
        return Ok(Ast::Term {
            field: None,
            value: w.to_string(),
            quoted: true,
        });
    }
    let Some((f, v)) = w.split_once(':').filter(|(f, _)| is_field(f)) else {
        return Ok(Ast::Term {
            field: None,
            value: w.to_string(),
            quoted,
        });
    };
    let field = f.to_ascii_lowercase();
    if let Some(inner) = v.strip_prefix(['[', '{']) {
        let lo_incl = v.starts_with('[');
        let hi_incl = v.ends_with(']');
        let inner = inner
            .strip_suffix([']', '}'])
            .ok_or_else(|| Error::Query(format!("bad range {v:?}")))?;
        let (a, b) = inner
            .split_once(" TO ")
            .ok_or_else(|| Error::Query(format!("range {v:?} needs 'a TO b'")))?;
        let bound = |s: &str, incl: bool| {
            let s = s.trim();
            if s == "*" {
                Bound::Unbounded
            } else if incl {
                Bound::Included(s.to_string())
            } else {
                Bound::Excluded(s.to_string())
            }
        };
        return Ok(Ast::Range {
            field,
            lo: bound(a, lo_incl),
            hi: bound(b, hi_incl),
        });
    }
    for (op, lo) in [(">=", true), ("<=", false), (">", true), ("<", false)] {
        if let Some(x) = v.strip_prefix(op) {
            let b = if op.len() == 2 {
                Bound::Included(x.to_string())
            } else {
                Bound::Excluded(x.to_string())
            };
            return Ok(if lo {
                Ast::Range {
                    field,
                    lo: b,
                    hi: Bound::Unbounded,
                }
            } else {
                Ast::Range {
                    field,
                    lo: Bound::Unbounded,
                    hi: b,
                }
            });
        }
    }
    Ok(Ast::Term {
        field: Some(field),
        value: v.to_string(),
        quoted,
    })
}

/// Field names a query may use.
pub const FIELDS: &[&str] = &[
    "ts", "time", "node", "kind", "level", "source", "file", "session", "zxid", "epoch", "server",
    "leader", "myid", "peer", "path", "state", "thread", "logger", "message", "msg", "incident",
    "ensemble",
];

fn is_field(f: &str) -> bool {
    FIELDS.contains(&f.to_ascii_lowercase().as_str())
}

/// Replaces every `incident:ID` term by `resolve(ID)` (the incident's time range).
pub fn resolve_incidents(a: Ast, resolve: &mut dyn FnMut(&str) -> Result<Ast>) -> Result<Ast> {
    Ok(match a {
        Ast::And(v) => Ast::And(
            v.into_iter()
                .map(|x| resolve_incidents(x, resolve))
                .collect::<Result<_>>()?,
        ),
        Ast::Or(v) => Ast::Or(
            v.into_iter()
                .map(|x| resolve_incidents(x, resolve))
                .collect::<Result<_>>()?,
        ),
        Ast::Not(x) => Ast::Not(Box::new(resolve_incidents(*x, resolve)?)),
        Ast::Term {
            field: Some(f),
            value,
            ..
        } if f == "incident" => resolve(&value)?,
        other => other,
    })
}

/// True when the query names an incident.
pub fn mentions_incident(a: &Ast) -> bool {
    match a {
        Ast::And(v) | Ast::Or(v) => v.iter().any(mentions_incident),
        Ast::Not(x) => mentions_incident(x),
        Ast::Term { field: Some(f), .. } => f == "incident",
        _ => false,
    }
}

/// A saved query (`queries/saved.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Saved {
    /// Name for `zklens run`.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Parameters it takes (`{param}` in the query).
    #[serde(default)]
    pub params: Vec<String>,
    /// The query text.
    pub query: String,
}

#[derive(serde::Deserialize)]
struct SavedFile {
    #[serde(default)]
    query: Vec<Saved>,
}

/// The embedded saved queries.
pub const SAVED: &str = include_str!("../../queries/saved.toml");

/// Saved queries: the embedded file, or `saved.toml` from the last of `dirs` that has one.
pub fn saved_queries(dirs: &[impl AsRef<std::path::Path>]) -> Result<Vec<Saved>> {
    let mut text = (String::from("embedded:saved.toml"), SAVED.to_string());
    for d in dirs {
        let p = d.as_ref().join("saved.toml");
        if p.exists() {
            text = (
                p.display().to_string(),
                std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?,
            );
        }
    }
    let f: SavedFile = toml::from_str(&text.1).map_err(|e| Error::Format {
        origin: text.0.clone(),
        reason: e.to_string(),
    })?;
    Ok(f.query)
}

/// Fills a saved query's parameters from `NAME=VALUE` arguments.
pub fn fill(q: &Saved, args: &[String]) -> Result<String> {
    let mut text = q.query.clone();
    for p in &q.params {
        let v = args
            .iter()
            .find_map(|a| a.strip_prefix(&format!("{p}=")))
            .ok_or_else(|| Error::Query(format!("saved query {} needs {p}=VALUE", q.name)))?;
        if v.contains(|c: char| c.is_whitespace() || "()\"".contains(c)) {
            return Err(Error::Query(format!("{p}: {v:?} must be a single word")));
        }
        text = text.replace(&format!("{{{p}}}"), v);
    }
    Ok(text)
}

/// Parses a query string.
pub fn parse(q: &str) -> Result<Ast> {
    let toks = lex(q)?;
    if toks.is_empty() {
        return Ok(Ast::All);
    }
    let mut p = P {
        toks,
        i: 0,
        depth: 0,
        terms: 0,
        len: q.len(),
    };
    let a = p.or()?;
    if let Some((t, at)) = p.toks.get(p.i) {
        return Err(Error::Query(format!(
            "unexpected {t:?} at byte offset {at}"
        )));
    }
    Ok(a)
}

/// Compiles queries against an index's schema.
pub struct Compiler<'a> {
    /// The index (for its tokenizer).
    pub index: &'a Index,
    /// Its fields.
    pub fields: &'a Fields,
    /// Zone for zone-less times.
    pub tz: Tz,
    /// Now, for relative times.
    pub now: i64,
    /// The segments the query will run on: wildcards on keyword fields are expanded into
    /// their terms there (None: a regex query).
    pub searcher: Option<&'a Searcher>,
}

impl<'a> Compiler<'a> {
    /// A compiler for `idx`, expanding wildcards against `searcher` (one of `idx`'s), with
    /// `tz` for zone-less times and now for relative ones.
    pub fn new(idx: &'a IndexHandle, searcher: &'a Searcher, tz: Tz) -> Compiler<'a> {
        Compiler {
            index: idx.index(),
            fields: idx.fields(),
            tz,
            now: time::now_nanos(),
            searcher: Some(searcher),
        }
    }
}

/// A wildcard is expanded into terms only while a segment's dictionary for the field has at
/// most this many terms (names such as kinds and levels); longer ones get a regex query.
const EXPAND_MAX_TERMS: usize = 4096;

/// Most wildcards of one query on fields whose term lists are too long to expand
/// (`EXPAND_MAX_TERMS`): each becomes a regex query that scans the field's whole term
/// dictionary and marks every match in a segment-sized bitset.
pub const MAX_REGEX_WILDCARDS: usize = 32;

/// What one compilation has spent of its budgets.
#[derive(Default)]
struct Spent {
    /// Terms wildcards expanded into.
    expanded: usize,
    /// Wildcards left as regex queries.
    regexes: usize,
}

enum Kind {
    U64(Field),
    I64Time(Field),
    Str(Field),
    Text(Field),
}

impl Compiler<'_> {
    fn field(&self, name: &str) -> Result<Kind> {
        let f = self.fields;
        Ok(match name {
            "ts" | "time" => Kind::I64Time(f.ts),
            "node" => Kind::Str(f.node),
            "kind" => Kind::Str(f.kind),
            "level" => Kind::Str(f.level),
            "source" | "file" => Kind::Str(f.source),
            "session" => Kind::U64(f.session),
            "zxid" => Kind::U64(f.zxid),
            "epoch" => Kind::U64(f.epoch),
            "server" => Kind::U64(f.server),
            "leader" => Kind::U64(f.leader),
            "myid" => Kind::U64(f.myid),
            "peer" => Kind::Str(f.peer),
            "path" => Kind::Str(f.path),
            "state" => Kind::Str(f.state),
            "thread" => Kind::Str(f.thread),
            "logger" => Kind::Str(f.logger),
            "message" | "msg" => Kind::Text(f.message),
            "incident" => {
                return Err(Error::Query(
                    "incident: is resolved against detected incidents before the search (zklens query does this)".into(),
                ))
            }
            other => return Err(Error::Query(format!("unknown field {other:?}"))),
        })
    }

    /// `ensemble:NAME`. Only events outside the default ensemble carry an ensemble term, so
    /// `ensemble:default` is every event without one.
    fn ensemble(&self, name: &str) -> Result<Box<dyn Query>> {
        crate::event::check_ensemble_name(name).map_err(Error::Query)?;
        let field = self.fields.ensemble;
        Ok(match field {
            Some(f) if crate::event::is_default_ensemble(name) => {
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                    (
                        Occur::MustNot,
                        Box::new(RangeQuery::new(
                            Bound::Included(Term::from_field_text(f, "")),
                            Bound::Unbounded,
                        )),
                    ),
                ]))
            }
            Some(f) => Box::new(TermQuery::new(
                Term::from_field_text(f, name),
                IndexRecordOption::Basic,
            )),
            // An index from before ensembles: everything is in the default one.
            None if crate::event::is_default_ensemble(name) => Box::new(AllQuery),
            None => Box::new(EmptyQuery),
        })
    }

    fn u64_of(&self, name: &str, v: &str) -> Result<u64> {
        let v = v.trim();
        let parsed = if name == "epoch" || name == "server" || name == "leader" || name == "myid" {
            if let Some(h) = v.strip_prefix("0x") {
                u64::from_str_radix(h, 16).ok()
            } else {
                v.parse().ok()
            }
        } else {
            parse_id(v)
        };
        parsed
            .ok_or_else(|| Error::Query(format!("{name}: {v:?} is not a number (use 0x for hex)")))
    }

    fn time_of(&self, v: &str) -> Result<i64> {
        time::parse_time(v, self.tz, self.now)
    }

    /// Compiles an AST. An AST nested deeper than the parser allows (built by hand), or
    /// whose wildcards expand into more than [`MAX_EXPANDED_TERMS`] terms or need more than
    /// [`MAX_REGEX_WILDCARDS`] regex scans, is refused with [`Error::Query`] naming the limit
    /// and the term where it was hit.
    pub fn compile(&self, a: &Ast) -> Result<Box<dyn Query>> {
        self.compile_at(a, 0, &mut Spent::default())
    }

    fn compile_at(&self, a: &Ast, depth: usize, spent: &mut Spent) -> Result<Box<dyn Query>> {
        // Every parsed level is at most an OR, an AND and a NOT (or a parenthesis) deep.
        if depth > 3 * MAX_DEPTH + 2 {
            return Err(Error::Query(format!(
                "nested deeper than {MAX_DEPTH} levels (the limit)"
            )));
        }
        let d = depth + 1;
        Ok(match a {
            Ast::All => Box::new(AllQuery),
            Ast::And(v) => {
                let mut cl: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                let mut positive = false;
                for x in v {
                    match x {
                        Ast::Not(inner) => {
                            cl.push((Occur::MustNot, self.compile_at(inner, d, spent)?))
                        }
                        _ => {
                            positive = true;
                            cl.push((Occur::Must, self.compile_at(x, d, spent)?));
                        }
                    }
                }
                if !positive {
                    cl.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(cl))
            }
            Ast::Or(v) => Box::new(BooleanQuery::new(
                v.iter()
                    .map(|x| Ok((Occur::Should, self.compile_at(x, d, spent)?)))
                    .collect::<Result<Vec<_>>>()?,
            )),
            Ast::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                (Occur::MustNot, self.compile_at(inner, d, spent)?),
            ])),
            Ast::Term {
                field,
                value,
                quoted,
            } => {
                let name = field.as_deref().unwrap_or("message");
                if name == "ensemble" {
                    return self.ensemble(value);
                }
                match self.field(name)? {
                    Kind::U64(f) => Box::new(TermQuery::new(
                        Term::from_field_u64(f, self.u64_of(name, value)?),
                        IndexRecordOption::Basic,
                    )),
                    Kind::I64Time(_) => {
                        // A time alone means that second.
                        let t = self.time_of(value)?;
                        crate::index::time_query(
                            self.fields,
                            self.searcher,
                            Bound::Included(t),
                            Bound::Excluded(t.saturating_add(1_000_000_000)),
                        )
                    }
                    Kind::Str(f) => {
                        if !quoted && value.contains('*') {
                            let re = value
                                .split('*')
                                .map(regex::escape)
                                .collect::<Vec<_>>()
                                .join(".*");
                            let written = || format!("{name}:{value}");
                            match self.expand(f, &re)? {
                                Some(terms) => {
                                    spent.expanded += terms.len();
                                    if spent.expanded > MAX_EXPANDED_TERMS {
                                        return Err(Error::Query(format!(
                                            "the wildcards expand into more than {MAX_EXPANDED_TERMS} terms (the limit) at {}",
                                            written()
                                        )));
                                    }
                                    crate::index::union_of(terms)
                                }
                                None => {
                                    spent.regexes += 1;
                                    if spent.regexes > MAX_REGEX_WILDCARDS {
                                        return Err(Error::Query(format!(
                                            "more than {MAX_REGEX_WILDCARDS} wildcards on long term lists (the limit) at {}",
                                            written()
                                        )));
                                    }
                                    Box::new(
                                        RegexQuery::from_pattern(&re, f)
                                            .map_err(|e| Error::Query(e.to_string()))?,
                                    )
                                }
                            }
                        } else {
                            let v = if name == "level" {
                                crate::event::Level::parse(value)
                                    .map(|l| l.as_str().to_string())
                                    .unwrap_or_else(|| value.to_ascii_uppercase())
                            } else {
                                value.clone()
                            };
                            Box::new(TermQuery::new(
                                Term::from_field_text(f, &v),
                                IndexRecordOption::Basic,
                            ))
                        }
                    }
                    Kind::Text(f) => self.text(f, value)?,
                }
            }
            Ast::Range { field, lo, hi } => {
                let conv = |b: &Bound<String>| -> Result<Bound<Term>> {
                    let k = self.field(field)?;
                    let one = |s: &String| -> Result<Term> {
                        Ok(match &k {
                            Kind::U64(f) => Term::from_field_u64(*f, self.u64_of(field, s)?),
                            Kind::I64Time(f) => Term::from_field_i64(*f, self.time_of(s)?),
                            Kind::Str(f) => Term::from_field_text(*f, s),
                            Kind::Text(_) => {
                                return Err(Error::Query(format!("no ranges on {field}")))
                            }
                        })
                    };
                    Ok(match b {
                        Bound::Included(s) => Bound::Included(one(s)?),
                        Bound::Excluded(s) => Bound::Excluded(one(s)?),
                        Bound::Unbounded => Bound::Unbounded,
                    })
                };
                let (l, h) = (conv(lo)?, conv(hi)?);
                if matches!((&l, &h), (Bound::Unbounded, Bound::Unbounded)) {
                    // `field:[* TO *]`: has the field at all
                    let kind = self.field(field)?;
                    let f = match kind {
                        Kind::U64(f) | Kind::I64Time(f) | Kind::Str(f) | Kind::Text(f) => f,
                    };
                    let schema = self.index.schema();
                    if schema.get_field_entry(f).is_fast() {
                        let name = schema.get_field_name(f).to_string();
                        Box::new(tantivy::query::ExistsQuery::new(name, false))
                    } else if let Kind::U64(_) = kind {
                        // Not a column (index::schema): every term of the field.
                        Box::new(RangeQuery::new(
                            Bound::Included(Term::from_field_u64(f, 0)),
                            Bound::Included(Term::from_field_u64(f, u64::MAX)),
                        ))
                    } else {
                        Box::new(
                            RegexQuery::from_pattern(".*", f)
                                .map_err(|e| Error::Query(e.to_string()))?,
                        )
                    }
                } else if let Kind::I64Time(_) = self.field(field)? {
                    let ns = |b: &Bound<String>| -> Result<Bound<i64>> {
                        Ok(match b {
                            Bound::Included(s) => Bound::Included(self.time_of(s)?),
                            Bound::Excluded(s) => Bound::Excluded(self.time_of(s)?),
                            Bound::Unbounded => Bound::Unbounded,
                        })
                    };
                    crate::index::time_query(self.fields, self.searcher, ns(lo)?, ns(hi)?)
                } else {
                    Box::new(RangeQuery::new(l, h))
                }
            }
        })
    }

    /// The terms of keyword field `f` matching `re` (whole term) in every segment, or None
    /// when there is no searcher or a dictionary is too long to scan.
    ///
    /// A regex query marks every document of every matching term in a bitset as large as
    /// the segment before it can be intersected: a million `client.*` events to find the
    /// few of one session. A union of term queries is intersected through the posting
    /// lists' skip data instead.
    fn expand(&self, f: Field, re: &str) -> Result<Option<Vec<Term>>> {
        let Some(searcher) = self.searcher else {
            return Ok(None);
        };
        let re =
            regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| Error::Query(e.to_string()))?;
        let mut terms = std::collections::BTreeSet::new();
        for seg in searcher.segment_readers() {
            let inv = seg
                .inverted_index(f)
                .map_err(|e| Error::Query(e.to_string()))?;
            let dict = inv.terms();
            if dict.num_terms() > EXPAND_MAX_TERMS {
                return Ok(None);
            }
            let mut stream = dict.stream().map_err(|e| Error::Query(e.to_string()))?;
            while stream.advance() {
                if let Ok(t) = std::str::from_utf8(stream.key()) {
                    if re.is_match(t) {
                        terms.insert(t.to_string());
                    }
                }
            }
        }
        Ok(Some(
            terms
                .into_iter()
                .map(|t| Term::from_field_text(f, &t))
                .collect(),
        ))
    }

    fn text(&self, f: Field, value: &str) -> Result<Box<dyn Query>> {
        let mut tok = self
            .index
            .tokenizer_for_field(f)
            .map_err(|e| Error::Query(e.to_string()))?;
        let mut stream = tok.token_stream(value);
        let mut terms: Vec<(usize, String)> = Vec::new();
        while stream.advance() {
            terms.push((stream.token().position, stream.token().text.clone()));
        }
        // A token that is an id as ZooKeeper writes it may be indexed as the mark of the
        // event's own session or zxid (index::indexed_message): each such token is also
        // searched as either mark together with that field's term.
        let ids: Vec<(usize, u64)> = terms
            .iter()
            .enumerate()
            .filter_map(|(i, (_, t))| {
                let v = u64::from_str_radix(t.strip_prefix("0x")?, 16).ok()?;
                crate::index::is_hex_of(t, v).then_some((i, v))
            })
            .collect();
        if ids.len() > MAX_IDS_IN_PHRASE {
            return Err(Error::Query(format!(
                "more than {MAX_IDS_IN_PHRASE} session ids or zxids in one phrase (the limit): {value:?}"
            )));
        }
        let message = |terms: &[(usize, String)]| -> Box<dyn Query> {
            let mut t: Vec<(usize, Term)> = terms
                .iter()
                .map(|(p, w)| (*p, Term::from_field_text(f, w)))
                .collect();
            match t.len() {
                0 => Box::new(EmptyQuery),
                1 => Box::new(TermQuery::new(t.remove(0).1, IndexRecordOption::WithFreqs)),
                _ => Box::new(PhraseQuery::new_with_offset(t)),
            }
        };
        if ids.is_empty() {
            return Ok(message(&terms));
        }
        // Every way of writing the ids: as written, as the session mark, as the zxid mark.
        let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for choice in 0..3usize.pow(ids.len() as u32) {
            let mut written = terms.clone();
            let mut also: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            let mut c = choice;
            for &(i, v) in &ids {
                let marked = match c % 3 {
                    0 => None,
                    1 => Some((crate::index::SESSION_MARK, self.fields.session)),
                    _ => Some((crate::index::ZXID_MARK, self.fields.zxid)),
                };
                c /= 3;
                if let Some((mark, field)) = marked {
                    written[i].1 = mark.to_string();
                    also.push((
                        Occur::Must,
                        Box::new(TermQuery::new(
                            Term::from_field_u64(field, v),
                            IndexRecordOption::Basic,
                        )),
                    ));
                }
            }
            let q = message(&written);
            any.push((
                Occur::Should,
                if also.is_empty() {
                    q
                } else {
                    also.push((Occur::Must, q));
                    Box::new(BooleanQuery::new(also))
                },
            ));
        }
        Ok(Box::new(BooleanQuery::new(any)))
    }
}

/// Most ids one phrase may hold: each is searched three ways (as written, as the session mark
/// and as the zxid mark), so a phrase becomes 3^n queries.
pub const MAX_IDS_IN_PHRASE: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids replaced by marks in the indexed message are still found by a word or phrase
    /// search, exactly where the written message has the token (and nowhere else).
    #[test]
    fn ids_indexed_as_marks_are_found_as_written() {
        use crate::event::{Attrs, Event};
        use crate::index::{DataDir, IndexHandle, IndexSink};
        use std::sync::Arc;
        const S: u64 = 0x0300_0a1b_2c06_0000;
        let ev = |i: usize, message: &str, session: Option<u64>, zxid: Option<u64>| Event {
            ts: Some(1_700_000_000_000_000_000 + i as i64),
            node: Arc::from("zk1"),
            myid: None,
            source: Arc::from("zk1.log"),
            offset: i as u64,
            line: i as u64 + 1,
            level: None,
            thread: None,
            logger: None,
            message: message.to_string(),
            kind: Arc::from("log"),
            attrs: Attrs {
                session,
                zxid,
                epoch: zxid.map(|z| z >> 32),
                ..Attrs::default()
            },
            paths: Vec::new(),
            replicas: Vec::new(),
            ensemble: crate::event::default_ensemble(),
        };
        let events = vec![
            ev(
                0,
                "Expiring session 0x3000a1b2c060000, timeout of 4000ms exceeded",
                Some(S),
                None,
            ),
            ev(
                1,
                "Processed session termination for sessionid: 0x3000A1B2C060000",
                Some(S),
                None,
            ),
            ev(
                2,
                "got 0x3000a1b2c060000 and 0x100000005",
                Some(0x99),
                Some(0x1_0000_0005),
            ),
            ev(3, "padded 0x03000a1b2c060000", Some(S), None),
            ev(4, "no ids here", Some(S), Some(S)),
            ev(5, "x0x3000a1b2c060000 is one word", Some(S), None),
            ev(
                6,
                "both 0x3000a1b2c060000 0x3000a1b2c060000",
                Some(S),
                Some(S),
            ),
        ];
        assert_eq!(
            crate::index::indexed_message(&events[0].message, Some(S), None),
            "Expiring session zklensmarksession, timeout of 4000ms exceeded"
        );
        assert_eq!(
            crate::index::indexed_message(&events[2].message, Some(0x99), Some(0x1_0000_0005)),
            "got 0x3000a1b2c060000 and zklensmarkzxid"
        );
        assert_eq!(
            crate::index::indexed_message(&events[5].message, Some(S), None),
            events[5].message
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = DataDir::new(tmp.path());
        let mut sink = IndexSink::open(&dir, 1).expect("open");
        sink.add(&events).expect("add");
        sink.commit().expect("commit");
        sink.close().expect("close");
        let idx = IndexHandle::open(&dir).expect("handle");
        let searcher = idx.searcher();
        let c = Compiler::new(&idx, &searcher, Tz::Utc);
        let found = |q: &str| -> Vec<usize> {
            let ast = parse(q).expect("parse");
            let query = c.compile(&ast).expect("compile");
            let hits = idx.search(query.as_ref(), None).expect("search");
            let got = idx
                .fetch(&hits.hits.iter().map(|h| h.1).collect::<Vec<_>>())
                .expect("fetch");
            let mut lines: Vec<usize> = got.iter().map(|e| e.offset as usize).collect();
            lines.sort();
            lines
        };
        assert_eq!(found("0x3000a1b2c060000"), vec![0, 1, 2, 6]);
        assert_eq!(found("0X3000A1B2C060000"), vec![0, 1, 2, 6]);
        assert_eq!(found("\"Expiring session 0x3000a1b2c060000\""), vec![0]);
        assert_eq!(found("\"sessionid 0x3000a1b2c060000\""), vec![1]);
        assert_eq!(found("\"0x3000a1b2c060000 and 0x100000005\""), vec![2]);
        assert_eq!(found("0x100000005"), vec![2]);
        assert_eq!(found("\"0x3000a1b2c060000 0x3000a1b2c060000\""), vec![6]);
        assert_eq!(found("0x03000a1b2c060000"), vec![3]);
        assert_eq!(found("session:0x3000a1b2c060000"), vec![0, 1, 3, 4, 5, 6]);
        // Present at all: zxid from its column, epoch (no column) from its terms.
        assert_eq!(found("zxid:[* TO *]"), vec![2, 4, 6]);
        assert_eq!(found("epoch:[* TO *]"), vec![2, 4, 6]);
        assert_eq!(found("peer:[* TO *]"), Vec::<usize>::new());
        assert!(parse("\"0x1 0x2 0x3 0x4\"")
            .and_then(|a| c.compile(&a))
            .is_err());
    }

    fn t(f: &str, v: &str) -> Ast {
        Ast::Term {
            field: Some(f.into()),
            value: v.into(),
            quoted: false,
        }
    }

    #[test]
    fn parses_boolean_structure() {
        assert_eq!(
            parse("session:0x1 kind:session.expired").ok(),
            Some(Ast::And(vec![
                t("session", "0x1"),
                t("kind", "session.expired")
            ]))
        );
        assert_eq!(
            parse("node:zk1 OR node:zk2 -level:DEBUG").ok(),
            Some(Ast::Or(vec![
                t("node", "zk1"),
                Ast::And(vec![
                    t("node", "zk2"),
                    Ast::Not(Box::new(t("level", "DEBUG")))
                ])
            ]))
        );
        assert_eq!(
            parse("(node:zk1 OR node:zk2) AND NOT kind:log").ok(),
            Some(Ast::And(vec![
                Ast::Or(vec![t("node", "zk1"), t("node", "zk2")]),
                Ast::Not(Box::new(t("kind", "log")))
            ]))
        );
    }

    #[test]
    fn parses_phrases_ranges_and_free_text() {
        assert_eq!(
            parse("\"Expiring session\"").ok(),
            Some(Ast::Term {
                field: None,
                value: "Expiring session".into(),
                quoted: true
            })
        );
        assert_eq!(
            parse("zxid:[0x100000000 TO 0x1ffffffff]").ok(),
            Some(Ast::Range {
                field: "zxid".into(),
                lo: Bound::Included("0x100000000".into()),
                hi: Bound::Included("0x1ffffffff".into())
            })
        );
        assert_eq!(
            parse("epoch:>=2").ok(),
            Some(Ast::Range {
                field: "epoch".into(),
                lo: Bound::Included("2".into()),
                hi: Bound::Unbounded
            })
        );
        assert_eq!(
            parse("message:\"connection lost\"").ok(),
            Some(Ast::Term {
                field: Some("message".into()),
                value: "connection lost".into(),
                quoted: true
            })
        );
        // Not a field: the colon is part of a free-text word.
        assert!(matches!(
            parse("foo:bar").ok(),
            Some(Ast::Term { field: None, .. })
        ));
    }

    /// Regression: the parser recursed once per `(` or `-` without a limit, so 10,000 `(` or
    /// 2,000 `-` overflowed the stack and aborted the process (SIGABRT; `zklens serve` too).
    #[test]
    fn nesting_is_bounded_with_a_clean_error() {
        let at_limit = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&at_limit).is_ok());
        assert!(parse(&format!("{}x", "-".repeat(MAX_DEPTH))).is_ok());
        for q in [
            format!("{}x", "(".repeat(10_000)),
            format!("{}x", "-".repeat(2_000)),
            format!("{}x", "NOT ".repeat(2_000)),
            format!("a {}x", "-(".repeat(1_000)),
        ] {
            let e = parse(&q).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains("deeper than 64"), "{e}");
        }
        // The offset is where the 65th level opens: 65 `(` start at byte 64.
        let e = parse(&format!("{}x", "(".repeat(100)))
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().ends_with("at byte offset 64"), "{e}");
        let e = parse(&format!("é {}x", "-".repeat(100)))
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().ends_with("at byte offset 67"), "{e}");
    }

    #[test]
    fn terms_are_bounded_with_a_clean_error() {
        let n = |k: usize| vec!["kind:x"; k].join(" OR ");
        assert!(parse(&n(MAX_TERMS)).is_ok());
        let e = parse(&n(MAX_TERMS + 1))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        // The 1025th term starts after 1024 terms of "kind:x OR " (10 bytes each).
        assert_eq!(
            e,
            format!("query: more than {MAX_TERMS} terms (the limit) at byte offset 10240")
        );
    }

    #[test]
    fn the_compiler_refuses_a_hand_built_ast_too_deep() {
        let mut a = t("kind", "x");
        for _ in 0..10_000 {
            a = Ast::Not(Box::new(a));
        }
        let c = Compiler {
            index: &Index::create_in_ram(crate::index::schema().0),
            fields: &crate::index::schema().1,
            tz: Tz::Utc,
            now: 0,
            searcher: None,
        };
        let e = c.compile(&a).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("deeper than 64"), "{e}");
        // An AST is dropped recursively too: take it apart level by level.
        while let Ast::Not(inner) = a {
            a = *inner;
        }
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("(node:zk1").is_err());
        assert!(parse("\"open").is_err());
        assert!(parse("zxid:[1 TO").is_err());
        assert!(parse("AND").is_err());
    }
}
