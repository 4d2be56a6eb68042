//! Log-format definitions (`parsers/*.toml`): line layouts, JSON field mappings and the rulesets
//! that classify messages. The defaults are embedded in the binary; files in a user's parser
//! directories are loaded at run time and override formats and rulesets of the same name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::layout::Layout;
use super::rules::{Classifier, RuleDef, RulesetDef};
use crate::error::{Error, Result};

/// The definitions shipped in `parsers/`, embedded at build time.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "zookeeper.toml",
        include_str!("../../parsers/zookeeper.toml"),
    ),
    ("clients.toml", include_str!("../../parsers/clients.toml")),
    ("generic.toml", include_str!("../../parsers/generic.toml")),
];

/// A format as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatDef {
    /// Unique name (`zookeeper-log4j`), used by `--format`.
    pub name: String,
    /// One line for `zklens formats`.
    #[serde(default)]
    pub description: String,
    /// log4j/logback `PatternLayout` or Python `logging` format.
    pub layout: Option<String>,
    /// Alternative to `layout`: a regex with named groups `ts`, `level`, `thread`, `logger`,
    /// `myid`, `msg`.
    pub regex: Option<String>,
    /// Alternative to `layout`: JSON objects, one per line.
    pub json: Option<JsonDef>,
    /// Timestamp format (Java letters, `ISO8601`, `RFC3339`, `epoch`, `epoch_ms`); overrides the
    /// layout's.
    pub time: Option<String>,
    /// Rulesets that classify this format's messages, in order.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Fold lines that do not match the layout into the previous entry (stack traces).
    #[serde(default = "yes")]
    pub multiline: bool,
    /// Tie-breaker when two formats match the same sample equally well (higher wins).
    #[serde(default)]
    pub priority: i32,
}

fn yes() -> bool {
    true
}

/// Field names of a JSON-lines format (first present key wins).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JsonDef {
    /// Timestamp keys.
    #[serde(default)]
    pub ts: Vec<String>,
    /// Level keys.
    #[serde(default)]
    pub level: Vec<String>,
    /// Message keys.
    #[serde(default)]
    pub message: Vec<String>,
    /// Logger keys.
    #[serde(default)]
    pub logger: Vec<String>,
    /// Thread keys.
    #[serde(default)]
    pub thread: Vec<String>,
    /// Keys holding attributes directly (`session = ["session", "session_id"]`).
    #[serde(default)]
    pub attrs: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    format: Vec<FormatDef>,
    #[serde(default)]
    ruleset: Vec<RulesetDef>,
}

/// How a format splits a line.
#[derive(Debug)]
pub enum Shape {
    /// A text layout.
    Text(Layout),
    /// JSON lines.
    Json(JsonDef),
    /// No structure: every line is one entry (the fallback).
    Plain,
}

/// A compiled format.
#[derive(Debug)]
pub struct Format {
    /// Its definition.
    pub def: FormatDef,
    /// How lines are split.
    pub shape: Shape,
    /// Its classifier.
    pub classifier: Arc<Classifier>,
    /// Where it was defined.
    pub origin: String,
}

/// All known formats and rulesets.
#[derive(Debug)]
pub struct Registry {
    formats: Vec<Arc<Format>>,
    rulesets: BTreeMap<String, (String, RulesetDef)>,
    plain: Arc<Format>,
}

impl Registry {
    /// The embedded defaults plus every `*.toml` in `dirs` (later definitions replace earlier
    /// ones of the same name).
    pub fn load(dirs: &[impl AsRef<Path>]) -> Result<Registry> {
        let mut sources: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (format!("embedded:{n}"), (*t).to_string()))
            .collect();
        for d in dirs {
            let d = d.as_ref();
            let rd = std::fs::read_dir(d).map_err(|e| Error::io(d, e))?;
            let mut files: Vec<_> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
                sources.push((f.display().to_string(), text));
            }
        }
        Registry::from_sources(&sources)
    }

    /// Builds a registry from (origin, TOML text) pairs.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Registry> {
        let mut defs: Vec<(String, FormatDef)> = Vec::new();
        let mut rulesets: BTreeMap<String, (String, RulesetDef)> = BTreeMap::new();
        for (origin, text) in sources {
            let f: FileDef = toml::from_str(text).map_err(|e| Error::Format {
                origin: origin.clone(),
                reason: e.to_string(),
            })?;
            for fd in f.format {
                defs.retain(|(_, d)| d.name != fd.name);
                defs.push((origin.clone(), fd));
            }
            for rs in f.ruleset {
                rulesets.insert(rs.name.clone(), (origin.clone(), rs));
            }
        }
        let all_rules: Vec<String> = rulesets.keys().cloned().collect();
        let mut formats = Vec::new();
        let mut cache = ClassifierCache::new();
        for (origin, def) in defs {
            formats.push(Arc::new(compile(&origin, def, &rulesets, &mut cache)?));
        }
        let plain = Arc::new(compile(
            "builtin",
            FormatDef {
                name: "plain".into(),
                description: "unstructured text: one entry per line, no timestamp".into(),
                layout: None,
                regex: None,
                json: None,
                time: None,
                rules: all_rules,
                multiline: false,
                priority: i32::MIN,
            },
            &rulesets,
            &mut cache,
        )?);
        Ok(Registry {
            formats,
            rulesets,
            plain,
        })
    }

    /// Formats in definition order.
    pub fn formats(&self) -> &[Arc<Format>] {
        &self.formats
    }

    /// The fallback format.
    pub fn plain(&self) -> Arc<Format> {
        self.plain.clone()
    }

    /// A format by name (`plain` included).
    pub fn get(&self, name: &str) -> Option<Arc<Format>> {
        if name == "plain" {
            return Some(self.plain());
        }
        self.formats.iter().find(|f| f.def.name == name).cloned()
    }

    /// Every rule with its examples: (ruleset, rule) pairs.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &RuleDef)> {
        self.rulesets
            .values()
            .flat_map(|(_, rs)| rs.rule.iter().map(move |r| (rs.name.as_str(), r)))
    }

    /// Chooses the format that reads most of `sample` (lines of a file's beginning) fully. See
    /// [`choose`](Self::choose).
    pub fn detect(&self, sample: &[&[u8]]) -> Arc<Format> {
        self.choose(sample).format
    }

    /// Scores every format on `sample` — how many lines each one reads as an entry, and of
    /// those how many with a timestamp (read fully) — and, when no shipped format reads every
    /// entry-looking line fully, layouts learned from the sample itself
    /// ([`infer`](super::infer)). The best score wins: timed entries, then entries, then a
    /// format's priority; a learned layout must do strictly better than every shipped format.
    /// The plain format when nothing reads a single line.
    pub fn choose(&self, sample: &[&[u8]]) -> Choice {
        let mut scores: Vec<Score> = self
            .formats
            .iter()
            .map(|f| Score::of(f.clone(), sample))
            .collect();
        let best_shipped = scores.iter().map(Score::key).max();
        let timed_best = best_shipped.map(|k| k.0).unwrap_or(0);
        // Lines that look like the start of an entry to the learner (they carry a time).
        let learned = self.learn(sample);
        let learnable = learned.iter().map(|l| l.1).max().unwrap_or(0);
        if learnable > timed_best {
            for (f, _) in learned {
                scores.push(Score::of(f, sample));
            }
        }
        let mut best: Option<&Score> = None;
        for s in &scores {
            if s.entries == 0 {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let learned = s.format.def.name == LEARNED;
                    if learned && b.format.def.name == LEARNED {
                        // Between learned layouts, on equal reads, the one with more fields.
                        (s.timed, s.entries, s.format.fields())
                            > (b.timed, b.entries, b.format.fields())
                    } else if learned {
                        (s.timed, s.entries) > (b.timed, b.entries)
                    } else {
                        s.key() > b.key()
                    }
                }
            };
            if better {
                best = Some(s);
            }
        }
        let format = best
            .map(|s| s.format.clone())
            .unwrap_or_else(|| self.plain());
        Choice {
            format,
            scores,
            sample_lines: sample.len(),
        }
    }

    /// Formats learned from `sample`, each with the number of sample lines it was learned from.
    fn learn(&self, sample: &[&[u8]]) -> Vec<(Arc<Format>, usize)> {
        let mut out = Vec::new();
        for l in super::infer::learn_text(sample, 3) {
            if let Ok(f) = self.learned_text(&l.pattern, None) {
                out.push((f, l.support));
            }
        }
        let base = self
            .formats
            .iter()
            .find_map(|f| match &f.shape {
                Shape::Json(j) => Some(j.clone()),
                _ => None,
            })
            .unwrap_or_default();
        if let Some(j) = super::infer::learn_json(sample, &base) {
            let n = sample
                .iter()
                .filter(|l| super::json_entry_timed(l, &j) == Some(true))
                .count();
            out.push((
                self.learned(
                    FormatDef {
                        name: LEARNED.into(),
                        description: format!(
                            "JSON lines learned from the file: time {:?}, message {:?}, level {:?}",
                            j.ts.first().map(String::as_str).unwrap_or(""),
                            j.message.first().map(String::as_str).unwrap_or(""),
                            j.level.first().map(String::as_str).unwrap_or("")
                        ),
                        json: Some(j),
                        multiline: false,
                        ..self.plain.def.clone()
                    },
                    Shape::Json(JsonDef::default()),
                ),
                n,
            ));
        }
        out
    }

    /// The format a source names: a format's name, else a layout (a pattern with `%`
    /// conversions, or `regex:` and a regex); see [`from_layout`](Self::from_layout).
    pub fn resolve(&self, spec: &str) -> Result<Arc<Format>> {
        if let Some(f) = self.get(spec) {
            return Ok(f);
        }
        if spec.contains('%') || spec.starts_with("regex:") {
            return self.from_layout(spec, None);
        }
        Err(Error::Format {
            origin: "format".into(),
            reason: format!(
                "unknown format {spec:?}: neither a format's name (`zklens formats` lists them) nor a layout (a pattern with % conversions, or regex:...)"
            ),
        })
    }

    /// A format for a layout given by a user (`--layout`, a source's `layout`, a registration's
    /// `format`): a log4j/logback `PatternLayout`, a Python `logging` format, or `regex:` and a
    /// regex with named groups (`ts`, `level`, `thread`, `logger`, `myid`, `msg`). An optional
    /// `time` gives the timestamp format. Classified by every ruleset, as plain text is.
    pub fn from_layout(&self, spec: &str, time: Option<&str>) -> Result<Arc<Format>> {
        let err = |reason: String| Error::Format {
            origin: "layout".into(),
            reason: format!("{spec:?}: {reason}"),
        };
        let (layout, regex) = match spec.strip_prefix("regex:") {
            Some(r) => (None, Some(r.to_string())),
            None => (Some(spec.to_string()), None),
        };
        let shape = match (&layout, &regex) {
            (Some(l), _) => Shape::Text(Layout::from_pattern(l, time).map_err(err)?),
            (_, Some(r)) => Shape::Text(Layout::from_regex(r, time).map_err(err)?),
            _ => return Err(err("empty layout".into())),
        };
        Ok(self.learned(
            FormatDef {
                name: GIVEN.into(),
                description: format!("the layout given: {spec}"),
                layout,
                regex,
                time: time.map(str::to_string),
                multiline: true,
                priority: 0,
                ..self.plain.def.clone()
            },
            shape,
        ))
    }

    /// A learned text layout (a pattern from [`infer`](super::infer)).
    fn learned_text(&self, pattern: &str, time: Option<&str>) -> Result<Arc<Format>> {
        let shape =
            Shape::Text(
                Layout::from_pattern(pattern, time).map_err(|reason| Error::Format {
                    origin: "learned".into(),
                    reason,
                })?,
            );
        Ok(self.learned(
            FormatDef {
                name: LEARNED.into(),
                description: format!("layout learned from the file: {pattern}"),
                layout: Some(pattern.to_string()),
                multiline: true,
                priority: -1,
                ..self.plain.def.clone()
            },
            shape,
        ))
    }

    /// A format outside the registry, classified by every ruleset (the plain format's
    /// classifier).
    fn learned(&self, def: FormatDef, shape: Shape) -> Arc<Format> {
        let shape = match (shape, &def.json) {
            (Shape::Json(_), Some(j)) => Shape::Json(j.clone()),
            (s, _) => s,
        };
        Arc::new(Format {
            def,
            shape,
            classifier: self.plain.classifier.clone(),
            origin: "learned".into(),
        })
    }
}

/// Name of a format learned from a file's own lines.
pub const LEARNED: &str = "inferred";
/// Name of a format built from a layout the user gave.
pub const GIVEN: &str = "layout";

/// How well one format reads a sample.
#[derive(Debug, Clone)]
pub struct Score {
    /// The format.
    pub format: Arc<Format>,
    /// Sample lines it reads as the start of an entry.
    pub entries: usize,
    /// Of those, the lines whose timestamp it reads (read fully).
    pub timed: usize,
}

impl Score {
    fn of(format: Arc<Format>, sample: &[&[u8]]) -> Score {
        let (mut entries, mut timed) = (0, 0);
        for l in sample {
            match format.read_head(l) {
                Some(true) => {
                    entries += 1;
                    timed += 1;
                }
                Some(false) => entries += 1,
                None => {}
            }
        }
        Score {
            format,
            entries,
            timed,
        }
    }

    fn key(&self) -> (usize, usize, i32) {
        (self.timed, self.entries, self.format.def.priority)
    }
}

/// The format chosen for a file, and how every candidate scored.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The format chosen.
    pub format: Arc<Format>,
    /// Every candidate's score (shipped formats in definition order, then learned ones).
    pub scores: Vec<Score>,
    /// Lines in the sample.
    pub sample_lines: usize,
}

/// Formats that list the same rulesets share one compiled classifier.
type ClassifierCache = std::collections::HashMap<Vec<String>, Arc<Classifier>>;

fn compile(
    origin: &str,
    def: FormatDef,
    rulesets: &BTreeMap<String, (String, RulesetDef)>,
    cache: &mut ClassifierCache,
) -> Result<Format> {
    let err = |reason: String| Error::Format {
        origin: format!("{origin} [{}]", def.name),
        reason,
    };
    let shape = match (&def.layout, &def.regex, &def.json) {
        (Some(l), None, None) => {
            Shape::Text(Layout::from_pattern(l, def.time.as_deref()).map_err(err)?)
        }
        (None, Some(r), None) => {
            Shape::Text(Layout::from_regex(r, def.time.as_deref()).map_err(err)?)
        }
        (None, None, Some(j)) => Shape::Json(j.clone()),
        (None, None, None) if def.name == "plain" => Shape::Plain,
        _ => {
            return Err(err(
                "a format needs exactly one of layout, regex, json".into()
            ))
        }
    };
    if let Some(c) = cache.get(&def.rules) {
        return Ok(Format {
            classifier: c.clone(),
            def,
            shape,
            origin: origin.to_string(),
        });
    }
    let mut rules: Vec<(String, RuleDef, bool)> = Vec::new();
    let mut listed = Vec::new();
    for name in &def.rules {
        listed.push(
            rulesets
                .get(name)
                .ok_or_else(|| err(format!("unknown ruleset {name:?}")))?,
        );
    }
    listed.sort_by_key(|(_, rs)| rs.fallback);
    for (o, rs) in listed {
        rules.extend(
            rs.rule
                .iter()
                .map(|r| (format!("{o} [{}]", rs.name), r.clone(), rs.fallback)),
        );
    }
    let classifier = Arc::new(Classifier::new(&rules).map_err(err)?);
    cache.insert(def.rules.clone(), classifier.clone());
    Ok(Format {
        def,
        shape,
        classifier,
        origin: origin.to_string(),
    })
}

impl Format {
    /// True when `line` starts a new entry in this format.
    pub fn head_matches(&self, line: &[u8]) -> bool {
        self.read_head(line).is_some()
    }

    /// Why this format reads `line` as an entry or not: the fields it finds, or where and why
    /// it stops (for `zklens formats --explain`).
    pub fn explain(&self, line: &[u8]) -> std::result::Result<String, String> {
        let text = |r: Option<(usize, usize)>| {
            r.map(|(a, b)| String::from_utf8_lossy(&line[a..b]).trim().to_string())
        };
        match &self.shape {
            Shape::Text(l) => {
                let p = l.explain(line).map_err(|m| {
                    let found: String = String::from_utf8_lossy(&line[m.column.min(line.len())..])
                        .chars()
                        .take(24)
                        .collect();
                    format!(
                        "column {}: expected {}, found {found:?}",
                        m.column, m.expected
                    )
                })?;
                let mut out = Vec::new();
                match p
                    .time
                    .as_ref()
                    .map(|c| crate::time::ZoneConverter::new(crate::time::Tz::Utc).to_nanos(c))
                {
                    Some(Some(t)) => out.push(format!("time {}", crate::time::rfc3339(t))),
                    Some(None) => return Err("the timestamp is not a valid date".into()),
                    None => out.push("no time".into()),
                }
                for (name, v) in [
                    ("level", text(p.level)),
                    ("thread", text(p.thread)),
                    ("logger", text(p.logger)),
                    ("myid", text(p.myid)),
                ] {
                    if let Some(v) = v.filter(|v| !v.is_empty()) {
                        out.push(format!("{name} {v:?}"));
                    }
                }
                Ok(out.join(", "))
            }
            Shape::Json(j) => {
                let t = line.trim_ascii();
                if t.first() != Some(&b'{') {
                    return Err("not a JSON object".into());
                }
                if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(t) {
                    return Err(format!("not valid JSON: {e}"));
                }
                match super::json_entry_timed(line, j) {
                    Some(true) => Ok(format!(
                        "JSON with a time under one of {:?}",
                        j.ts.iter().take(4).collect::<Vec<_>>()
                    )),
                    Some(false) => Err(format!(
                        "JSON, but no readable time under any of {:?}, or no message under any of {:?}",
                        j.ts, j.message
                    )),
                    None => Err(format!(
                        "JSON without any of the keys {:?} or {:?}",
                        j.ts, j.message
                    )),
                }
            }
            Shape::Plain => Ok("one line, no fields".into()),
        }
    }

    /// How many fields its layout has (0 for JSON and plain text).
    fn fields(&self) -> usize {
        match &self.shape {
            Shape::Text(l) => l.fields(),
            _ => 0,
        }
    }

    /// `Some(timed)` when `line` starts a new entry in this format: `timed` says whether its
    /// timestamp was read (a format without one never reads it).
    pub fn read_head(&self, line: &[u8]) -> Option<bool> {
        match &self.shape {
            Shape::Text(l) => {
                let p = l.parse(line)?;
                Some(p.time.as_ref().is_some_and(crate::time::Civil::readable))
            }
            Shape::Json(j) => super::json_entry_timed(line, j),
            Shape::Plain => Some(false),
        }
    }
}

/// Checks every rule's `examples`: in each format that uses the rule's ruleset, the example must
/// classify with the rule's kind (an earlier rule taking it is a failure too). Returns the
/// failures, one line each.
pub fn check_examples(registry: &Registry) -> Vec<String> {
    let mut fails = registry.plain.classifier.regex_errors();
    for f in registry
        .formats()
        .iter()
        .chain(std::iter::once(&registry.plain))
    {
        for rs in &f.def.rules {
            let Some((_, def)) = registry.rulesets.get(rs) else {
                continue;
            };
            for r in &def.rule {
                for ex in &r.examples {
                    let mut a = crate::event::Attrs::default();
                    let got = f
                        .classifier
                        .classify(ex, r.logger.as_deref(), &mut a)
                        .map(|c| c.kind.to_string())
                        .unwrap_or_else(|| crate::event::KIND_LOG.to_string());
                    if got != r.kind {
                        fails.push(format!(
                            "format {} ruleset {rs}: {ex:?} is {got}, the rule says {}",
                            f.def.name, r.kind
                        ));
                    }
                }
            }
        }
    }
    fails
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::load(&[] as &[&str]).expect("embedded formats load")
    }

    fn chosen(lines: &[&str]) -> Arc<Format> {
        let s: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        reg().choose(&s).format
    }

    #[test]
    fn a_shipped_format_wins_a_tie_with_a_learned_layout() {
        let f = chosen(&[
            "2026-11-24 22:02:29,123 [myid:1] - INFO  [main:QuorumPeer@1455] - LOOKING",
            "2026-11-24 22:02:29,223 [myid:1] - WARN  [main:QuorumPeer@1455] - x",
        ]);
        assert_eq!(f.def.name, "zookeeper-log4j");
    }

    #[test]
    fn an_unknown_layout_is_learned_not_plain() {
        let f = chosen(&[
            "2026-11-24 22:02:29,123 INFO [Thread-3 (zk_loop)] kazoo.client - Connecting to x",
            "Traceback (most recent call last):",
            "2026-11-24 22:02:29,223 ERROR [MainThread] svc - boom",
        ]);
        assert_eq!(f.def.name, LEARNED);
        assert_eq!(f.def.layout.as_deref(), Some("%d{RFC3339} %p [%t] %c - %m"));
    }

    #[test]
    fn a_format_that_reads_more_lines_fully_wins_over_the_first_that_matches() {
        // python-basic reads the first line (no time), a learned layout the other two, with
        // their time: more lines read fully.
        let f = chosen(&[
            "INFO:kazoo.client:Connecting to x",
            "2026-11-24 22:02:29,223 INFO:kazoo.client:Connecting to y",
            "2026-11-24 22:02:29,323 INFO:kazoo.client:Connecting to z",
        ]);
        assert_eq!(f.def.name, LEARNED);
        let f = chosen(&["INFO:kazoo.client:Connecting to x", "plain words"]);
        assert_eq!(f.def.name, "python-basic");
        let f = chosen(&[
            "2026-11-24T22:02:29.223Z | INFO | svc | hello",
            "2026-11-24T22:02:30.223Z | WARN | svc | there",
        ]);
        assert_eq!(f.def.name, LEARNED);
    }

    #[test]
    fn json_keys_are_learned_when_the_shipped_names_miss_the_message() {
        let f = chosen(&[
            r#"{"event": "became PRIMARY", "level": "info", "timestamp": "2026-11-24T22:02:29.123Z"}"#,
            r#"{"event": "connected", "level": "warning", "timestamp": "2026-11-24T22:02:30Z"}"#,
        ]);
        assert_eq!(f.def.name, LEARNED);
        match &f.shape {
            Shape::Json(j) => assert_eq!(j.message.first().map(String::as_str), Some("event")),
            _ => panic!("a JSON format"),
        }
        // The shipped mapping reads its own keys fully: it stays.
        let f = chosen(&[r#"{"ts": "2026-11-24T22:02:29.123Z", "level": "INFO", "msg": "x"}"#]);
        assert_eq!(f.def.name, "jsonl");
    }

    #[test]
    fn layouts_given_by_users_compile_or_say_why() {
        let r = reg();
        let f = r
            .resolve("%(asctime)s %(levelname)s [%(threadName)s] %(name)s - %(message)s")
            .expect("python layout");
        assert!(f.head_matches(
            b"2026-11-24 22:02:29,123 INFO [Thread-3 (zk_loop)] kazoo.client - Connecting"
        ));
        let f = r
            .from_layout("%d{dd/MM/yyyy HH:mm:ss} %-5p %c - %m%n", None)
            .expect("log4j layout");
        assert_eq!(
            f.read_head(b"24/11/2026 22:02:29 INFO  a.B - x"),
            Some(true)
        );
        let f = r
            .resolve(r"regex:^(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)$")
            .expect("regex layout");
        assert_eq!(f.read_head(b"2026-11-24T22:02:29Z INFO hello"), Some(true));
        assert!(r.resolve("python-logging").is_ok());
        let e = r.resolve("no-such-format").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("unknown format")));
        assert!(r.resolve("%(asctime)s no message").is_err());
    }
}
