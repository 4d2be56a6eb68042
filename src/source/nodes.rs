//! Node names: the node each file of one run belongs to, decided over all the run's files at
//! once (a name that tells a file apart depends on what else is there).
//!
//! **The rule.** Each file is reduced to the labels its path gives: its *stem* (the file name
//! without rotation suffixes, compression and extensions: `zookeeper.log.2`, `calc-a.log.gz`,
//! `app-2026-11-24.0.log` and `app.log.2026-11-24-13` give `zookeeper`, `calc-a` and `app`;
//! companion words such as `-gc`, `_audit`, `.out` are dropped too) and its directories, nearest
//! first. Names that say what a thing is rather than whose it is (`logs`, `data`, `version-2`,
//! dates; stems like `zookeeper`, `server`, `app`, `out`, `gc`) never name a node, and
//! ZooKeeper's `log.*` / `snapshot.*` have no stem. A file then belongs to its nearest named
//! directory, unless the stems tell the files there apart:
//!
//! - a directory whose files have no named stem, or one stem that contains the directory's name,
//!   or several stems one of which is the directory's name, is one node (`zk1/logs/zookeeper.log`
//!   and `zk1/data/version-2/log.1` → `zk1`; `calc-a/logs/calc-a.log` → `calc-a`);
//! - otherwise each stem is its own node (`apps/calc-a.log`, `apps/calc-b.log` → `calc-a`,
//!   `calc-b`), and files there without a stem stay the directory's.
//!
//! Each node is named by its stem or its directory; when two nodes would get the same name, the
//! one whose name is nearer keeps it and the others take the next name up their path
//! (`host-1/calc`), so different nodes never share a name unless their paths say the same.
//!
//! **ZooKeeper servers.** A server's id is read from its files: `[myid:N]`, `myid=N`
//! (`QuorumPeer[myid=N]` threads, `Starting quorum peer, myid=N`), `My id = N`,
//! `SyncThread:N` in a text log's first 64 KiB; the `myid` file of the data directory a txn log
//! or snapshot lies in. The id does not rename a server whose path names it: `zk1` stays `zk1`.
//! It names the server whose path says nothing (`logs/zookeeper.log` alone → `zk3`); it parts two
//! servers whose paths are alike (their files are named `zk1`, `zk2`); and it brings a server's
//! txn logs and snapshots found elsewhere (`data-1/version-2/`, with `data-1/myid`) into the one
//! node whose text log shows the same id, so a server's events are under one node across its
//! log, txn logs and snapshots. The `server.N=` lines a server logs list every member, not the
//! server itself, so they are not evidence.
//!
//! **Overrides** ([`NodeRule`]): one name for every file; the nearest named directory; the stem;
//! or a regex over the path whose `node` group (else first group) is the name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, Result};

use super::{Content, SourceFile};

/// How nodes are named.
#[derive(Debug, Clone, Default)]
pub enum NodeRule {
    /// From the paths of all the run's files and ZooKeeper's myid evidence (see the module).
    #[default]
    Auto,
    /// Every file is this node (`--node NAME`).
    Fixed(String),
    /// The nearest directory that is not a generic name (`--node-from dir`).
    Dir,
    /// The file's stem (`--node-from file`); ZooKeeper's `log.*` and `snapshot.*` files, whose
    /// names say nothing, take their directory's.
    File,
    /// A regex over the path: its `node` group, else its first group, else the whole match
    /// (`--node-from REGEX`). A path it does not match cannot be named.
    Pattern(Regex),
}

impl NodeRule {
    /// The rule `--node-from` names: `dir`, `file`, or a regex.
    pub fn from_arg(s: &str) -> Result<NodeRule> {
        match s {
            "dir" => Ok(NodeRule::Dir),
            "file" => Ok(NodeRule::File),
            _ => Regex::new(s).map(NodeRule::Pattern).map_err(|e| {
                Error::Param(format!("--node-from {s:?}: not dir, file or a regex: {e}"))
            }),
        }
    }
}

/// Where a file's node name came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NodeOrigin {
    /// The nearest directory with a name of its own (the usual case).
    #[default]
    Dir,
    /// The file's name.
    File,
    /// Several components of the path (the nearer ones alone named another node too).
    Path,
    /// A directory above the paths given (they hold generic names only).
    Outer,
    /// The ZooKeeper server id its files show.
    Myid(u64),
    /// Nothing in the path or the content names it.
    Unknown,
    /// `--node NAME`.
    Given,
    /// `--node-from REGEX`.
    Pattern,
}

impl NodeOrigin {
    /// A short note for a summary, where the name is not simply its directory's.
    pub fn note(&self) -> Option<String> {
        match self {
            NodeOrigin::Dir | NodeOrigin::Path | NodeOrigin::Given | NodeOrigin::Pattern => None,
            NodeOrigin::File => Some("file name".into()),
            NodeOrigin::Outer => Some("directory above".into()),
            NodeOrigin::Myid(n) => Some(format!("myid {n}")),
            NodeOrigin::Unknown => Some("nothing names it".into()),
        }
    }
}

/// Directory names that say what a directory holds rather than whose it is.
const GENERIC_DIRS: &[&str] = &[
    "logs",
    "log",
    "data",
    "datalog",
    "datalogs",
    "datalogdir",
    "datadir",
    "version-2",
    "var",
    "tmp",
    "zookeeper",
    "current",
    "archive",
    "archives",
    "archived",
    "rotated",
    "old",
    "backup",
    "backups",
    "lib",
    "opt",
    "srv",
    "home",
    "mnt",
    "usr",
    "local",
];

/// Words of file names that say what a file is rather than whose it is.
const GENERIC_WORDS: &[&str] = &[
    "zookeeper",
    "server",
    "app",
    "application",
    "service",
    "out",
    "stdout",
    "stderr",
    "console",
    "gc",
    "log",
    "logs",
    "snapshot",
    "audit",
    "main",
    "debug",
    "trace",
    "error",
    "errors",
    "err",
    "info",
    "warn",
    "all",
    "messages",
    "syslog",
    "output",
    "access",
    "current",
    "latest",
    "combined",
];

/// Words that, at the end of a file name, name a companion log of the same process
/// (`calc-a-gc.log`, `zookeeper_audit.log`, `calc-a.out`).
const COMPANION_WORDS: &[&str] = &[
    "gc", "audit", "out", "err", "stdout", "stderr", "console", "debug", "trace", "error",
    "errors", "access",
];

const SEPARATORS: &[char] = &['-', '_', '.', ' '];

static COMPRESSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\.(gz|bz2|xz|zst|zstd|lz4|z|zip|snappy)$").expect("constant regex")
});
static EXTENSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\.(log|txt|out|err|json|jsonl|ndjson|csv|current|old|bak|prev)$")
        .expect("constant regex")
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\.\d+$").expect("constant regex"));
/// A date, maybe with a time and a roll index: `.2026-11-24`, `-20261124`, `.2026-11-24-13`,
/// `_2026-11-24T13-05`, `-2026-11-24-1`.
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[-_.]\d{4}-?\d{2}-?\d{2}(?:[-_T.]?\d{2}(?:[-:.]?\d{2}){0,2})?(?:[-_.]\d{1,4})?$")
        .expect("constant regex")
});
/// A directory named by a date (`2026-11-24`, `20261124`, `2026-11`, `2026-11-24T13`).
static DATE_DIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}[-_.]?\d{2}(?:[-_.]?\d{2}(?:[-_T.]?\d{2}(?:[-:.]?\d{2}){0,2})?)?$")
        .expect("constant regex")
});
/// Evidence of a ZooKeeper server's id in its log.
static MYID: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(
        r"\[myid:(\d{1,9})\]|\bmyid=(\d{1,9})\b|My id =\s+(\d{1,9})\b|\[SyncThread:(\d{1,9}):",
    )
    .expect("constant regex")
});

/// Bytes of a text log searched for myid evidence.
const MYID_SCAN: u64 = 64 * 1024;

/// The file name without rotation suffixes, compression and extensions
/// (`zookeeper.log.2026-11-24.gz` → `zookeeper`). Empty when nothing is left.
pub fn strip_rotation(name: &str) -> &str {
    let mut s = name;
    loop {
        let before = s.len();
        for re in [&*COMPRESSION, &*NUMBER, &*EXTENSION, &*DATE] {
            if let Some(m) = re.find(s) {
                s = &s[..m.start()];
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

/// The stem of a file name: without rotation suffixes and companion words (`calc-a-gc.log` →
/// `calc-a`); None when what is left is generic (`zookeeper.log`, `server.out`, `0.log`).
pub fn stem(name: &str) -> Option<&str> {
    let s = stem_any(name);
    let generic = s
        .split(SEPARATORS)
        .filter(|w| !w.is_empty())
        .all(is_generic_word)
        || s.bytes()
            .all(|b| b.is_ascii_digit() || SEPARATORS.contains(&char::from(b)));
    (!generic).then_some(s)
}

/// The stem even when it is generic (`zookeeper.log` → `zookeeper`).
fn stem_any(name: &str) -> &str {
    let mut s = strip_rotation(name);
    while let Some(i) = s.rfind(SEPARATORS) {
        let last = &s[i + 1..];
        if i > 0
            && (last.is_empty() || COMPANION_WORDS.contains(&last.to_ascii_lowercase().as_str()))
        {
            s = &s[..i];
        } else {
            break;
        }
    }
    s
}

fn is_generic_word(w: &str) -> bool {
    GENERIC_WORDS.contains(&w.to_ascii_lowercase().as_str())
}

/// A directory name that says what it holds rather than whose it is.
pub fn is_generic_dir(d: &str) -> bool {
    d.is_empty()
        || d.starts_with('.')
        || GENERIC_DIRS.contains(&d.to_ascii_lowercase().as_str())
        || DATE_DIR.is_match(d)
        || d.starts_with("ensemble=")
        || (d.len() >= 4 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// What a path says about whose a file is.
#[derive(Debug, Clone)]
struct Facts {
    /// The stem, when it has a name of its own (text files only).
    stem: Option<String>,
    /// The stem even when generic (`zookeeper`), for `--node-from file` and the last resort.
    any_stem: String,
    /// Directories with a name of their own, nearest first: (the path up to it, its name).
    dirs: Vec<(String, String)>,
    /// The nearest directory with a name of its own in the absolute path.
    outer: Option<String>,
    /// The server id the file's content or data directory shows.
    myid: Option<u64>,
    /// A text log (not a txn log or snapshot).
    text: bool,
}

fn facts(f: &SourceFile, scan: bool) -> Facts {
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = matches!(f.content, Content::Text { .. });
    let binary = matches!(f.content, Content::TxnLog { .. } | Content::Snapshot { .. });
    // Only text logs' names count: an empty or binary file beside them is no node of its own.
    let stem_of = if text { stem(&name) } else { None };
    let mut dirs = Vec::new();
    let mut prefix = String::new();
    if let Some(parent) = f.path.parent() {
        for c in parent.components() {
            if let Component::Normal(s) = c {
                let s = s.to_string_lossy();
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(&s);
                if !is_generic_dir(&s) {
                    dirs.push((prefix.clone(), s.into_owned()));
                }
            }
        }
    }
    dirs.reverse();
    let outer = outer_dir(&f.path);
    let myid = if !scan {
        None
    } else if let Content::Text { gzip } = f.content {
        myid_in_log(&f.path, gzip)
    } else if binary {
        myid_of_data_dir(&f.path)
    } else {
        None
    };
    Facts {
        stem: stem_of.map(str::to_string),
        any_stem: if binary {
            String::new()
        } else {
            stem_any(&name).to_string()
        },
        dirs,
        outer,
        myid,
        text,
    }
}

/// The nearest directory with a name of its own in the absolute, normalised path.
fn outer_dir(path: &Path) -> Option<String> {
    let abs = std::path::absolute(path).ok()?;
    let mut parts: Vec<String> = Vec::new();
    for c in abs.parent()?.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.into_iter().rev().find(|d| !is_generic_dir(d))
}

/// The server id a ZooKeeper log shows in its first bytes (one id only: a log showing several is
/// no evidence).
fn myid_in_log(path: &Path, gzip: bool) -> Option<u64> {
    let r = super::open(path, gzip).ok()?;
    let mut head = Vec::new();
    r.take(MYID_SCAN).read_to_end(&mut head).ok()?;
    myid_in_text(&head)
}

/// The one server id `text` shows, if it shows exactly one.
pub fn myid_in_text(text: &[u8]) -> Option<u64> {
    let mut ids = BTreeSet::new();
    for c in MYID.captures_iter(text) {
        let id = (1..=4)
            .filter_map(|i| c.get(i))
            .next()
            .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
            .and_then(|s| s.parse::<u64>().ok());
        // 0 is a standalone server's (`SyncThread:0`): no member of an ensemble.
        if let Some(id) = id.filter(|&id| id > 0) {
            ids.insert(id);
            if ids.len() > 1 {
                return None;
            }
        }
    }
    ids.into_iter().next()
}

/// The id in the `myid` file of the data directory a txn log or snapshot lies in (`DIR/myid`
/// beside `DIR/version-2/`, or in the file's own directory).
fn myid_of_data_dir(path: &Path) -> Option<u64> {
    let dir = path.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .find_map(|d| read_myid(&d.join("myid")))
}

fn read_myid(p: &Path) -> Option<u64> {
    let f = std::fs::File::open(p).ok()?;
    let mut s = String::new();
    f.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok().filter(|&id| id > 0)
}

/// A group of files that are one node, before it is named.
#[derive(Debug, Default)]
struct Group {
    /// Names to try, best first.
    cands: Vec<(String, NodeOrigin)>,
    /// The candidate in use.
    at: usize,
    /// Its files (indexes into the run's files).
    files: Vec<usize>,
    /// Does it hold a text log.
    text: bool,
    /// Its server id, when its files show one.
    myid: Option<u64>,
}

/// Names the node of every file. Files that cannot be named (a `--node-from` regex that does
/// not match) are taken out and returned as errors naming them.
pub fn assign(files: &mut Vec<SourceFile>, rule: &NodeRule) -> Vec<Error> {
    let mut errors = Vec::new();
    match rule {
        NodeRule::Auto => auto(files),
        NodeRule::Fixed(name) => {
            for f in files.iter_mut() {
                f.node = name.clone();
                f.node_origin = NodeOrigin::Given;
            }
        }
        NodeRule::Dir | NodeRule::File => {
            for f in files.iter_mut() {
                let x = facts(f, false);
                let (node, origin) = match (rule, x.text || !x.any_stem.is_empty()) {
                    (NodeRule::File, true) if !x.any_stem.is_empty() => {
                        (x.any_stem.clone(), NodeOrigin::File)
                    }
                    _ => by_dir(&x),
                };
                f.node = node;
                f.node_origin = origin;
            }
        }
        NodeRule::Pattern(re) => {
            files.retain_mut(|f| {
                let p = f.path.to_string_lossy();
                let name = re.captures(&p).and_then(|c| {
                    c.name("node")
                        .or_else(|| c.get(1))
                        .or_else(|| c.get(0))
                        .map(|m| m.as_str().to_string())
                });
                match name.filter(|n| !n.is_empty()) {
                    Some(n) => {
                        f.node = n;
                        f.node_origin = NodeOrigin::Pattern;
                        true
                    }
                    None => {
                        errors.push(Error::NodeName {
                            path: f.path.clone(),
                            reason: format!(
                                "--node-from {:?} does not match this path (or names nothing), so its node has no name",
                                re.as_str()
                            ),
                        });
                        false
                    }
                }
            });
        }
    }
    errors
}

/// The nearest directory with a name of its own, else one above the paths given, else the stem.
fn by_dir(x: &Facts) -> (String, NodeOrigin) {
    if let Some((_, d)) = x.dirs.first() {
        (d.clone(), NodeOrigin::Dir)
    } else if let Some(o) = &x.outer {
        (o.clone(), NodeOrigin::Outer)
    } else if !x.any_stem.is_empty() {
        (x.any_stem.clone(), NodeOrigin::File)
    } else {
        ("unknown".into(), NodeOrigin::Unknown)
    }
}

/// The automatic rule (see the module).
fn auto(files: &mut [SourceFile]) {
    let facts: Vec<Facts> = files.iter().map(|f| facts(f, true)).collect();
    // A directory is known by the names on its path (`a/2026-11-24/zk1` and `a/2026-11-25/zk1`
    // are one: their paths say the same). Each one's distinct stems:
    let chain = |x: &Facts| -> Vec<String> { x.dirs.iter().map(|d| d.1.clone()).collect() };
    let mut stems: HashMap<Vec<String>, BTreeSet<&str>> = HashMap::new();
    for x in &facts {
        let e = stems.entry(chain(x)).or_default();
        if let Some(s) = &x.stem {
            e.insert(s);
        }
    }
    // Which group each file is in: (directory, stem when the stems tell files apart there).
    let mut keys: BTreeMap<(Vec<String>, Option<String>), Vec<usize>> = BTreeMap::new();
    for (i, x) in facts.iter().enumerate() {
        let dir = chain(x);
        let label = x.dirs.first().map_or("", |d| d.1.as_str());
        let here = stems.get(&dir).cloned().unwrap_or_default();
        let own_stem = match &x.stem {
            None => None,
            Some(_) if here.is_empty() => None,
            Some(s) if here.len() == 1 => (!label.is_empty()
                && (s.eq_ignore_ascii_case(label) || contains_words(s, label)))
            .then_some(())
            .map_or(Some(s.clone()), |_| None),
            Some(s) => (!here.iter().any(|h| h.eq_ignore_ascii_case(label))).then(|| s.clone()),
        };
        keys.entry((dir, own_stem)).or_default().push(i);
    }
    // Groups, parted where their files show different server ids.
    let mut groups: Vec<Group> = Vec::new();
    for ((_, own_stem), members) in keys {
        let first = &facts[members[0]];
        let cands = candidates(first, own_stem.as_deref());
        let ids: BTreeSet<u64> = members.iter().filter_map(|&i| facts[i].myid).collect();
        let mut parts: BTreeMap<Option<u64>, Vec<usize>> = BTreeMap::new();
        for &i in &members {
            let id = if ids.len() > 1 { facts[i].myid } else { None };
            parts.entry(id).or_default().push(i);
        }
        for (id, members) in parts {
            let myid = id.or_else(|| ids.iter().next().copied().filter(|_| ids.len() == 1));
            let cands = match id {
                // A server the path does not tell apart from others: named by its id.
                Some(n) => {
                    let base = cands.first().map(|c| c.0.clone()).unwrap_or_default();
                    vec![
                        (format!("zk{n}"), NodeOrigin::Myid(n)),
                        (format!("{base}/zk{n}"), NodeOrigin::Myid(n)),
                    ]
                }
                None if cands.is_empty() => fallback(first, myid),
                None => cands.clone(),
            };
            groups.push(Group {
                cands,
                at: 0,
                text: members.iter().any(|&i| facts[i].text),
                files: members,
                myid,
            });
        }
    }
    // A server's txn logs and snapshots found apart from its log join the log's node.
    let mut joined: Vec<Option<usize>> = vec![None; groups.len()];
    for (g, grp) in groups.iter().enumerate() {
        let Some(id) = grp.myid.filter(|_| !grp.text) else {
            continue;
        };
        let logs: Vec<usize> = (0..groups.len())
            .filter(|&h| h != g && groups[h].text && groups[h].myid == Some(id))
            .collect();
        if let [h] = logs[..] {
            joined[g] = Some(h);
        }
    }
    let live: Vec<usize> = (0..groups.len()).filter(|&g| joined[g].is_none()).collect();
    resolve(&mut groups, &live);
    for (g, grp) in groups.iter().enumerate() {
        let (name, origin) = match joined[g] {
            Some(h) => (
                current(&groups[h]).0,
                NodeOrigin::Myid(grp.myid.unwrap_or_default()),
            ),
            None => current(grp),
        };
        for &i in &grp.files {
            files[i].node = name.clone();
            files[i].node_origin = origin.clone();
            files[i].myid = facts[i].myid.or(grp.myid);
        }
    }
}

/// The names a group with a directory or a stem of its own can take, best first.
fn candidates(x: &Facts, own_stem: Option<&str>) -> Vec<(String, NodeOrigin)> {
    let labels: Vec<&str> = x.dirs.iter().map(|d| d.1.as_str()).take(3).collect();
    let mut out = Vec::new();
    match own_stem {
        Some(s) => {
            out.push((s.to_string(), NodeOrigin::File));
            if let Some(l) = labels.first() {
                out.push((l.to_string(), NodeOrigin::Dir));
            }
            for k in 1..=labels.len() {
                out.push((joined(&labels[..k], Some(s)), NodeOrigin::Path));
            }
        }
        None => {
            for k in 1..=labels.len() {
                let origin = if k == 1 {
                    NodeOrigin::Dir
                } else {
                    NodeOrigin::Path
                };
                out.push((joined(&labels[..k], None), origin));
            }
        }
    }
    out
}

/// Labels nearest-first as a path (`host-1/calc`).
fn joined(labels: &[&str], stem: Option<&str>) -> String {
    let mut parts: Vec<&str> = labels.iter().rev().copied().collect();
    parts.extend(stem);
    parts.join("/")
}

/// The name of a group whose path names nothing: its server id, a directory above, its stem.
fn fallback(x: &Facts, myid: Option<u64>) -> Vec<(String, NodeOrigin)> {
    let mut out = Vec::new();
    if let Some(n) = myid {
        out.push((format!("zk{n}"), NodeOrigin::Myid(n)));
    }
    if let Some(o) = &x.outer {
        match myid {
            Some(n) => out.push((format!("{o}/zk{n}"), NodeOrigin::Myid(n))),
            None => out.push((o.clone(), NodeOrigin::Outer)),
        }
    }
    if out.is_empty() {
        if x.any_stem.is_empty() {
            out.push(("unknown".into(), NodeOrigin::Unknown));
        } else {
            out.push((x.any_stem.clone(), NodeOrigin::File));
        }
    }
    out
}

fn current(g: &Group) -> (String, NodeOrigin) {
    g.cands
        .get(g.at)
        .cloned()
        .unwrap_or_else(|| ("unknown".into(), NodeOrigin::Unknown))
}

/// Gives different groups different names: where groups share a name, the one that reached it
/// with its better candidate keeps it, the others move to their next; groups out of candidates
/// keep their last (their paths say the same).
fn resolve(groups: &mut [Group], live: &[usize]) {
    for _ in 0..16 {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for &g in live {
            by_name.entry(current(&groups[g]).0).or_default().push(g);
        }
        let mut advance = Vec::new();
        for gs in by_name.values().filter(|gs| gs.len() > 1) {
            let min = gs.iter().map(|&g| groups[g].at).min().unwrap_or(0);
            let at_min = gs.iter().filter(|&&g| groups[g].at == min).count();
            for &g in gs {
                if (groups[g].at > min || at_min > 1) && groups[g].at + 1 < groups[g].cands.len() {
                    advance.push(g);
                }
            }
        }
        if advance.is_empty() {
            return;
        }
        for g in advance {
            groups[g].at += 1;
        }
    }
}

/// `s` holds the words of `label` in a row (`zookeeper-zk-server-zk1` holds `zk1`).
fn contains_words(s: &str, label: &str) -> bool {
    let words = |x: &str| -> Vec<String> {
        x.split(SEPARATORS)
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let (s, l) = (words(s), words(label));
    !l.is_empty() && s.windows(l.len()).any(|w| w == l.as_slice())
}

/// Names of files as they would be named in one run (for tests and tools): the node of each
/// path, given what each contains.
pub fn name_paths(paths: &[(PathBuf, Content)], rule: &NodeRule) -> Vec<(String, NodeOrigin)> {
    let mut files: Vec<SourceFile> = paths
        .iter()
        .map(|(p, c)| SourceFile::unnamed(p, *c, 0))
        .collect();
    let _ = assign(&mut files, rule);
    files.into_iter().map(|f| (f.node, f.node_origin)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: Content = Content::Text { gzip: false };
    const TXN: Content = Content::TxnLog { gzip: true };
    const SNAP: Content = Content::Snapshot { gzip: true };

    /// Names of a run of text files.
    fn run(paths: &[&str]) -> Vec<String> {
        run_with(&paths.iter().map(|p| (*p, TEXT)).collect::<Vec<_>>())
    }

    fn run_with(paths: &[(&str, Content)]) -> Vec<String> {
        let v: Vec<(PathBuf, Content)> =
            paths.iter().map(|(p, c)| (PathBuf::from(p), *c)).collect();
        name_paths(&v, &NodeRule::Auto)
            .into_iter()
            .map(|n| n.0)
            .collect()
    }

    #[test]
    fn rotation_suffixes_and_companions_are_not_names() {
        for (name, want) in [
            ("zookeeper.log", Some("zookeeper")),
            ("zookeeper.log.2", Some("zookeeper")),
            ("calc-a.log.gz", Some("calc-a")),
            ("calc-a.log.1.gz", Some("calc-a")),
            ("calc-a.2026-11-24", Some("calc-a")),
            ("calc-a-20261124.log", Some("calc-a")),
            ("calc-a.log.2026-11-24-13", Some("calc-a")),
            ("calc-a-2026-11-24.0.log", Some("calc-a")),
            ("calc-a_2026-11-24T13-05.log.gz", Some("calc-a")),
            ("calc-a-2026-11-24-1.log", Some("calc-a")),
            ("calc-a-gc.log", Some("calc-a")),
            ("calc-a.out", Some("calc-a")),
            ("display-1.log", Some("display-1")),
            ("zookeeper-1.log", Some("zookeeper-1")),
        ] {
            assert_eq!(stem_any(name), want.unwrap_or(""), "{name}");
        }
        for generic in [
            "zookeeper.log",
            "zookeeper.out",
            "zookeeper_audit.log",
            "server.log.3",
            "app.log",
            "stdout",
            "console.log.gz",
            "gc.log.0.current",
            "0.log",
            "2026-11-24.log",
            "log.100000001",
            "snapshot.0",
        ] {
            assert_eq!(stem(generic), None, "{generic}");
        }
        assert_eq!(stem("calc-a.log"), Some("calc-a"));
    }

    #[test]
    fn host_directories_name_their_files() {
        assert_eq!(
            run_with(&[
                ("in/zk1/logs/zookeeper.log", TEXT),
                ("in/zk1/data/version-2/log.100000001.gz", TXN),
                ("in/zk1/data/version-2/snapshot.0.gz", SNAP),
                ("in/zk2/logs/zookeeper.log", TEXT),
                ("in/zk2/logs/zookeeper.log.1", TEXT),
                ("in/calc-a/logs/calc-a.log", TEXT),
                ("in/calc-a/logs/calc-a-gc.log", TEXT),
            ]),
            ["zk1", "zk1", "zk1", "zk2", "zk2", "calc-a", "calc-a"]
        );
        // One server alone, its directory given.
        assert_eq!(
            run_with(&[
                ("zk1/logs/zookeeper.log", TEXT),
                ("zk1/data/version-2/log.1", TXN),
            ]),
            ["zk1", "zk1"]
        );
        assert_eq!(run(&["host-3/zookeeper.log.2"]), ["host-3"]);
        assert_eq!(
            run(&[
                "host-3/zookeeper.log.2",
                "host-3/zookeeper.log",
                "host-4/zookeeper.log"
            ]),
            ["host-3", "host-3", "host-4"]
        );
    }

    #[test]
    fn a_flat_folder_is_named_by_file() {
        assert_eq!(
            run(&["apps/calc-a.log", "apps/calc-b.log", "apps/display-1.log"]),
            ["calc-a", "calc-b", "display-1"]
        );
        // Rotations join their file's node.
        assert_eq!(
            run(&[
                "apps/calc-a.log",
                "apps/calc-a.log.1",
                "apps/calc-a-2026-11-23.log.gz",
                "apps/calc-b.log",
                "apps/archive/calc-b.log.2026-11-20",
            ]),
            ["calc-a", "calc-a", "calc-a", "calc-b", "calc-b"]
        );
        // Files given one by one, without a directory.
        assert_eq!(run(&["calc-a.log", "calc-b.log"]), ["calc-a", "calc-b"]);
        // A single service log in a folder of its own: its name is more telling than the folder's.
        assert_eq!(
            run(&["apps/calc-a.log", "zk1/zookeeper.log"]),
            ["calc-a", "zk1"]
        );
    }

    #[test]
    fn a_stem_naming_its_directory_belongs_to_it() {
        // The server's own log under the default zkServer.sh name, beside its data.
        assert_eq!(
            run_with(&[
                ("zk1/logs/zookeeper-zk-server-zk1.log", TEXT),
                ("zk1/logs/zookeeper-zk-server-zk1.out", TEXT),
                ("zk1/data/version-2/log.1", TXN),
            ]),
            ["zk1", "zk1", "zk1"]
        );
        // A service's other logs in its directory stay its own.
        assert_eq!(
            run(&[
                "calc-a/calc-a.log",
                "calc-a/metrics.log",
                "calc-b/calc-b.log"
            ]),
            ["calc-a", "calc-a", "calc-b"]
        );
    }

    #[test]
    fn names_shared_by_different_files_climb_the_path() {
        // The same service on two hosts: the host tells them apart.
        assert_eq!(
            run(&["host-1/calc.log", "host-2/calc.log"]),
            ["host-1", "host-2"]
        );
        // Two services on each of two hosts: host and service.
        assert_eq!(
            run(&[
                "host-1/calc.log",
                "host-1/ledger.log",
                "host-2/calc.log",
                "host-2/ledger.log",
            ]),
            [
                "host-1/calc",
                "host-1/ledger",
                "host-2/calc",
                "host-2/ledger"
            ]
        );
        // Two incidents' servers of the same names.
        assert_eq!(
            run(&[
                "a/zk1/logs/zookeeper.log",
                "b/zk1/logs/zookeeper.log",
                "b/zk2/logs/zookeeper.log",
            ]),
            ["a/zk1", "b/zk1", "zk2"]
        );
        // A server keeps its directory's name; a service beside it takes a longer one.
        assert_eq!(
            run(&["host-1/zookeeper.log", "host-1/calc.log", "host-2/calc.log"]),
            ["host-1", "host-1/calc", "host-2"]
        );
    }

    #[test]
    fn date_and_generic_directories_are_not_names() {
        assert_eq!(
            run(&[
                "collected/2026-11-24/zk1/zookeeper.log",
                "collected/2026-11-25/zk1/zookeeper.log",
                "collected/20261124/zk2/logs/zookeeper.log",
                "collected/2026-11/zk2/logs/zookeeper.log.1",
            ]),
            ["zk1", "zk1", "zk2", "zk2"]
        );
        assert!(is_generic_dir("2026-11-24T13"));
        assert!(!is_generic_dir("zk-2026"));
        // An empty file beside a service's log is no node of its own.
        assert_eq!(
            run_with(&[
                ("svc/calc-a.log", TEXT),
                ("svc/notes.txt", Content::Empty),
                (
                    "svc/core.bin",
                    Content::Binary {
                        offset: 0,
                        why: super::super::BinaryWhy::Nul(100),
                    },
                ),
            ]),
            ["calc-a", "svc", "svc"]
        );
    }

    #[test]
    fn overrides() {
        let paths: Vec<(PathBuf, Content)> = [
            ("in/host-1/logs/calc-a.log", TEXT),
            ("in/host-1/data/version-2/log.1", TXN),
        ]
        .iter()
        .map(|(p, c)| (PathBuf::from(p), *c))
        .collect();
        let names = |r: &NodeRule| -> Vec<String> {
            name_paths(&paths, r).into_iter().map(|n| n.0).collect()
        };
        assert_eq!(names(&NodeRule::Dir), ["host-1", "host-1"]);
        assert_eq!(names(&NodeRule::File), ["calc-a", "host-1"]);
        assert_eq!(names(&NodeRule::Fixed("x".into())), ["x", "x"]);
        let re = NodeRule::from_arg(r"in/(?P<node>[^/]+)/").expect("regex");
        assert_eq!(names(&re), ["host-1", "host-1"]);
        let re = NodeRule::from_arg(r"host-(\d)").expect("regex");
        assert_eq!(names(&re), ["1", "1"]);
        assert!(NodeRule::from_arg("(").is_err());
        // A path the regex does not match is an error naming it.
        let mut files: Vec<SourceFile> = paths
            .iter()
            .map(|(p, c)| SourceFile::unnamed(p, *c, 0))
            .collect();
        let re = NodeRule::from_arg(r"logs/(\w+)").expect("regex");
        let errors = assign(&mut files, &re);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].node, "calc");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .contains("in/host-1/data/version-2/log.1"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn myid_evidence_in_text() {
        assert_eq!(
            myid_in_text(b"2026-11-24 22:02:29,123 [myid:2] - INFO  [main:A@1] - x\n"),
            Some(2)
        );
        assert_eq!(
            myid_in_text(b"2026-11-24 22:02:29,123 - INFO  [QuorumPeer[myid=3](plain=0.0.0.0:2183)(secure=disabled):QuorumPeer@1429] - FOLLOWING\n"),
            Some(3)
        );
        assert_eq!(
            myid_in_text(b"INFO [main] - New election. My id =  4, proposed zxid=0x0\n"),
            Some(4)
        );
        assert_eq!(
            myid_in_text(b"2012-01-01 00:00:00,000 - INFO  [SyncThread:5:FileTxnLog@199] - Creating new log file: log.100000001\n"),
            Some(5)
        );
        // Client logs name the server they talk to, not themselves; standalone servers no id.
        assert_eq!(
            myid_in_text(b"2026-11-24 22:02:29,123 [myid:127.0.0.1:2181] - INFO  [main-SendThread(127.0.0.1:2181):ClientCnxn@1] - x\n[myid:] - y\n"),
            None
        );
        // Two ids: no evidence.
        assert_eq!(myid_in_text(b"[myid:1] a\n[myid:2] b\n"), None);
        // A standalone server is no member.
        assert_eq!(
            myid_in_text(b"2012-01-01 00:00:00,000 - INFO  [SyncThread:0:FileTxnLog@199] - x\n"),
            None
        );
    }

    /// Writes files under a temporary directory and names them as one run.
    fn on_disk(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Vec<(String, String)>) {
        let d = tempfile::tempdir_in("/tmp").expect("tempdir");
        for (p, b) in files {
            let p = d.path().join(p);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).expect("mkdir");
            }
            std::fs::write(p, b).expect("write");
        }
        let (found, errors) = super::super::discover(&[d.path().to_path_buf()]);
        assert!(errors.is_empty(), "{errors:?}");
        let names = found
            .into_iter()
            .map(|f| {
                let rel = f.path.strip_prefix(d.path()).unwrap_or(&f.path);
                let note = f.node_origin.note().unwrap_or_default();
                (
                    rel.display().to_string(),
                    format!("{} {note}", f.node).trim().to_string(),
                )
            })
            .collect();
        (d, names)
    }

    const TXN_HEAD: &[u8] = b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\x01";

    #[test]
    fn servers_named_by_myid_where_the_path_says_nothing() {
        let line =
            |id: u32| format!("2026-11-24 22:02:29,123 [myid:{id}] - INFO  [main:A@1] - x\n");
        // Flat server logs: the names already tell them apart; their data joins them by myid.
        let (_d, names) = on_disk(&[
            ("logs/zookeeper-1.log", line(1).as_bytes()),
            ("logs/zookeeper-2.log", line(2).as_bytes()),
            ("data-1/myid", b"1\n"),
            ("data-1/version-2/log.100000001", TXN_HEAD),
            ("data-2/myid", b"2\n"),
            ("data-2/version-2/log.100000001", TXN_HEAD),
        ]);
        assert_eq!(
            names,
            [
                (
                    "data-1/version-2/log.100000001".into(),
                    "zookeeper-1 myid 1".into()
                ),
                (
                    "data-2/version-2/log.100000001".into(),
                    "zookeeper-2 myid 2".into()
                ),
                (
                    "logs/zookeeper-1.log".into(),
                    "zookeeper-1 file name".into()
                ),
                (
                    "logs/zookeeper-2.log".into(),
                    "zookeeper-2 file name".into()
                ),
            ]
        );
        // Servers whose paths are alike (dated folders): their ids part them.
        let (_d, names) = on_disk(&[
            ("2026-11-24/zookeeper.log", line(1).as_bytes()),
            ("2026-11-25/zookeeper.log", line(2).as_bytes()),
        ]);
        let nodes: Vec<&str> = names.iter().map(|n| n.1.as_str()).collect();
        assert_eq!(nodes, ["zk1 myid 1", "zk2 myid 2"]);
        // A server's directory name is kept, its myid only recorded.
        let (_d, names) = on_disk(&[
            ("zk7/logs/zookeeper.log", line(3).as_bytes()),
            ("zk7/data/myid", b"3"),
            ("zk7/data/version-2/log.1", TXN_HEAD),
        ]);
        let nodes: Vec<&str> = names.iter().map(|n| n.1.as_str()).collect();
        assert_eq!(nodes, ["zk7", "zk7"]);
    }

    #[test]
    fn a_lone_server_log_is_named_by_its_myid() {
        let d = tempfile::tempdir_in("/tmp").expect("tempdir");
        let log = d.path().join("var/log/zookeeper/zookeeper.log");
        let data = d.path().join("var/lib/zookeeper");
        std::fs::create_dir_all(log.parent().expect("parent")).expect("mkdir");
        std::fs::create_dir_all(data.join("version-2")).expect("mkdir");
        std::fs::write(
            &log,
            "2026-11-24 22:02:29,123 [myid:3] - INFO  [main:A@1] - x\n",
        )
        .expect("write");
        std::fs::write(data.join("myid"), "3\n").expect("write");
        std::fs::write(data.join("version-2/log.1"), TXN_HEAD).expect("write");
        // Only generic names in the paths (`/tmp/.tmpXXXX/var/log/zookeeper`): the server's
        // id names its log and its data, one node.
        let (found, errors) =
            super::super::discover(&[log.parent().expect("parent").to_path_buf(), data.clone()]);
        assert!(errors.is_empty(), "{errors:?}");
        let nodes: Vec<(String, NodeOrigin)> = found
            .iter()
            .map(|f| (f.node.clone(), f.node_origin.clone()))
            .collect();
        assert_eq!(
            nodes,
            [
                ("zk3".to_string(), NodeOrigin::Myid(3)),
                ("zk3".to_string(), NodeOrigin::Myid(3))
            ]
        );
        assert_eq!(found[0].myid, Some(3));
    }
}
