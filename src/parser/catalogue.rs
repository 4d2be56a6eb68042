//! The catalogue of log statements (`parsers/catalogue/*.toml`): every INFO/WARN/ERROR statement
//! of the ZooKeeper server and Java client (3.4 to 3.9), Curator's connection-state and leader
//! classes and kazoo, taken from their sources at the release tags by
//! `parsers/catalogue/extract.py`. Each statement names the kind its lines must classify to, with
//! an example and the attributes it must yield, or `none` and why it deserves no kind.
//!
//! [`check`] proves it: each example is wrapped in its component's line layout, parsed by the
//! named format like any log line, and its kind and attributes compared with the catalogue's.
//! `zklens formats --check` and the test suite run it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::format::Registry;
use super::{EntryParser, SourceMeta};
use crate::error::{Error, Result};
use crate::event::{Attrs, KIND_LOG};
use crate::time::Tz;

/// The catalogue files, embedded at build time.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "zookeeper-server.toml",
        include_str!("../../parsers/catalogue/zookeeper-server.toml"),
    ),
    (
        "zookeeper-client.toml",
        include_str!("../../parsers/catalogue/zookeeper-client.toml"),
    ),
    (
        "curator.toml",
        include_str!("../../parsers/catalogue/curator.toml"),
    ),
    (
        "kazoo.toml",
        include_str!("../../parsers/catalogue/kazoo.toml"),
    ),
];

/// The kind of a statement that deserves none.
pub const NONE: &str = "none";

/// One catalogue file: a component's statements.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// What the file covers and how its examples are laid out.
    pub catalogue: Header,
    /// The statements.
    #[serde(default)]
    pub statement: Vec<Statement>,
}

/// A catalogue file's header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// `zookeeper-server`, `zookeeper-client`, `curator`, `kazoo`.
    pub component: String,
    /// The format whose rules must classify the examples (`zookeeper-log4j`).
    pub format: String,
    /// A log line of that format with `{level}` (`{level5}`: padded to 5), `{class}` and
    /// `{message}` in place of the statement's values.
    pub line: String,
    /// The release lines covered.
    pub versions: Vec<String>,
    /// The releases read (runs of consecutive ones: `3.4.0..3.4.14`).
    pub releases: Vec<String>,
}

/// One log statement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The class (Java) or logger (Python) that logs it.
    pub class: String,
    /// Its level(s): `INFO`, `WARN`, `INFO/WARN`.
    pub level: String,
    /// The message template from the source, `{}` for each argument.
    pub template: String,
    /// Release lines it appears in.
    pub versions: Vec<String>,
    /// Releases it appears in.
    pub releases: Vec<String>,
    /// The kind it must classify to, or [`NONE`].
    pub kind: String,
    /// A message as the statement writes it (after a `\n`: the stack trace's first line, which
    /// the parser reads when the first says nothing).
    pub example: String,
    /// The attributes the example must yield (none other, but an epoch derived from the zxid).
    #[serde(default)]
    pub fields: BTreeMap<String, toml::Value>,
    /// Why a statement has no kind.
    pub why: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// Further values of the same statement that classify differently (`Sending {}` in 3.4 is
    /// `Sending DIFF`, `Sending SNAP` or `Sending TRUNC`).
    #[serde(default)]
    pub also: Vec<Case>,
}

/// Another example of a statement, with its own kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The kind it must classify to.
    pub kind: String,
    /// The message.
    pub example: String,
    /// The attributes it must yield.
    #[serde(default)]
    pub fields: BTreeMap<String, toml::Value>,
    /// Free text.
    pub note: Option<String>,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Statements checked.
    pub statements: usize,
    /// Of which with a kind.
    pub with_kind: usize,
    /// Of which listed as deserving none.
    pub none: usize,
    /// Examples checked (a statement may have several).
    pub examples: usize,
    /// One line per mismatch.
    pub failures: Vec<String>,
}

/// Parses the embedded catalogue files.
pub fn embedded() -> Result<Vec<Catalogue>> {
    EMBEDDED
        .iter()
        .map(|(name, text)| {
            toml::from_str(text).map_err(|e| Error::Format {
                origin: format!("embedded:catalogue/{name}"),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Checks every statement of `catalogues` against the formats of `registry`: each example,
/// parsed as a line of its component's format, must get the statement's kind (`log` for
/// [`NONE`]) and exactly its fields.
pub fn check(registry: &Registry, catalogues: &[Catalogue]) -> Report {
    let mut report = Report::default();
    for c in catalogues {
        let h = &c.catalogue;
        let Some(format) = registry.get(&h.format) else {
            report
                .failures
                .push(format!("{}: no format named {:?}", h.component, h.format));
            continue;
        };
        for s in &c.statement {
            report.statements += 1;
            match s.kind.as_str() {
                NONE => report.none += 1,
                _ => report.with_kind += 1,
            }
            let who = format!("{} {}: {:?}", h.component, s.class, s.template);
            if s.kind == NONE && s.why.as_deref().is_none_or(str::is_empty) {
                report
                    .failures
                    .push(format!("{who}: kind none without a why"));
            }
            if s.kind == "?" {
                report.failures.push(format!(
                    "{who}: no kind assigned (parsers/catalogue/assign/{}.toml)",
                    h.component
                ));
                continue;
            }
            let cases = std::iter::once((&s.kind, &s.example, &s.fields))
                .chain(s.also.iter().map(|a| (&a.kind, &a.example, &a.fields)));
            for (kind, example, fields) in cases {
                report.examples += 1;
                if let Err(why) = check_one(&format, h, s, kind, example, fields) {
                    report.failures.push(format!("{who}: {example:?}: {why}"));
                }
            }
        }
    }
    report
}

fn check_one(
    format: &Arc<super::format::Format>,
    h: &Header,
    s: &Statement,
    kind: &str,
    example: &str,
    fields: &BTreeMap<String, toml::Value>,
) -> std::result::Result<(), String> {
    let level = s.level.split('/').next().unwrap_or("INFO");
    let line = h
        .line
        .replace("{level5}", &format!("{level:<5}"))
        .replace("{level}", level)
        .replace("{class}", &s.class)
        .replace("{message}", example);
    let mut p = EntryParser::new(
        format.clone(),
        SourceMeta {
            node: Arc::from("catalogue"),
            ensemble: crate::event::default_ensemble(),
            source: Arc::from("catalogue"),
            tz: Tz::Utc,
        },
    );
    // A multi-line example: the first line in the layout, the rest as its stack trace.
    let mut events: Vec<_> = line
        .split('\n')
        .zip(1..)
        .filter_map(|(l, n)| p.push(l.as_bytes(), 0, n))
        .collect();
    events.extend(p.finish());
    let [e] = events.as_slice() else {
        return Err(format!("{} entries from one line", events.len()));
    };
    if e.ts.is_none() || e.message != example {
        return Err(format!(
            "the {} layout did not read the line {line:?}",
            format.def.name
        ));
    }
    let want = if kind == NONE { KIND_LOG } else { kind };
    if &*e.kind != want {
        return Err(format!("classified {}, the catalogue says {kind}", e.kind));
    }
    if kind == NONE {
        return Ok(());
    }
    let expected = expected_attrs(fields)?;
    let (got, exp) = (attr_strings(&e.attrs), attr_strings(&expected));
    let diff: Vec<String> = got
        .iter()
        .zip(&exp)
        .filter(|(g, x)| g != x)
        .map(|((n, g), (_, x))| {
            let show = |v: &Option<String>| {
                v.as_ref()
                    .map_or("nothing".to_string(), |v| format!("{v:?}"))
            };
            format!("{n} is {}, expected {}", show(g), show(x))
        })
        .collect();
    if diff.is_empty() {
        Ok(())
    } else {
        Err(diff.join("; "))
    }
}

/// The attributes a catalogue entry's `fields` describe (`zxid = "0x100000012"`, `server = 2`),
/// with the epoch derived from the zxid as the parser derives it.
fn expected_attrs(fields: &BTreeMap<String, toml::Value>) -> std::result::Result<Attrs, String> {
    let mut a = Attrs::default();
    for (name, v) in fields {
        let text = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => return Err(format!("field {name}: unexpected value {other}")),
        };
        let num = || -> std::result::Result<u64, String> {
            let r = match text.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => text.parse(),
            };
            r.map_err(|e| format!("field {name} = {text:?}: {e}"))
        };
        match name.as_str() {
            "session" => a.session = Some(num()?),
            "zxid" => a.zxid = Some(num()?),
            "epoch" => a.epoch = Some(num()?),
            "server" => a.server = Some(num()?),
            "leader" => a.leader = Some(num()?),
            "duration_ms" => a.duration_ms = Some(num()?),
            "timeout_ms" => a.timeout_ms = Some(num()?),
            "peer" => a.peer = Some(text),
            "path" => a.path = Some(text),
            "state" => a.state = Some(text),
            _ => return Err(format!("unknown field {name:?}")),
        }
    }
    a.derive();
    Ok(a)
}

fn attr_strings(a: &Attrs) -> [(&'static str, Option<String>); 10] {
    let hex = |v: Option<u64>| v.map(|v| format!("0x{v:x}"));
    let dec = |v: Option<u64>| v.map(|v| v.to_string());
    [
        ("session", hex(a.session)),
        ("zxid", hex(a.zxid)),
        ("epoch", dec(a.epoch)),
        ("server", dec(a.server)),
        ("leader", dec(a.leader)),
        ("peer", a.peer.clone()),
        ("path", a.path.clone()),
        ("duration_ms", dec(a.duration_ms)),
        ("timeout_ms", dec(a.timeout_ms)),
        ("state", a.state.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::load(&[] as &[&str]).expect("embedded formats load")
    }

    /// The issue's acceptance test: every catalogued statement of every release line classifies
    /// to its kind with its fields, and every statement without one is listed as such on purpose.
    #[test]
    fn every_catalogued_statement_classifies_to_its_kind() {
        let cats = embedded().expect("the catalogue parses");
        let r = check(&registry(), &cats);
        assert!(
            r.failures.is_empty(),
            "{} of {} catalogue examples fail:\n{}",
            r.failures.len(),
            r.examples,
            r.failures.join("\n")
        );
        assert_eq!(r.statements, r.with_kind + r.none);
        let components: Vec<&str> = cats
            .iter()
            .map(|c| c.catalogue.component.as_str())
            .collect();
        assert_eq!(
            components,
            ["zookeeper-server", "zookeeper-client", "curator", "kazoo"]
        );
        let server = &cats[0].catalogue.versions;
        for v in ["3.4", "3.5", "3.6", "3.7", "3.8", "3.9"] {
            assert!(server.iter().any(|s| s == v), "no {v} in {server:?}");
        }
    }

    /// Old and new wordings of the same event give the same kind and the same fields.
    #[test]
    fn old_and_new_wordings_agree() {
        let cats = embedded().expect("the catalogue parses");
        let server = &cats[0].statement;
        let find = |class: &str, template: &str| {
            server
                .iter()
                .find(|s| s.class == class && s.template == template)
                .unwrap_or_else(|| panic!("{class}: {template} is catalogued"))
        };
        let took34 = find("Follower", "FOLLOWING - LEADER ELECTION TOOK - {}");
        let took38 = find("Follower", "FOLLOWING - LEADER ELECTION TOOK - {} {}");
        assert_eq!(took34.kind, took38.kind);
        assert_eq!(took34.versions, ["3.4", "3.5"]);
        assert_eq!(
            took34.fields.keys().collect::<Vec<_>>(),
            took38.fields.keys().collect::<Vec<_>>()
        );
        let n34 = find(
            "FastLeaderElection",
            "Notification: {} (n.leader), 0x{} (n.zxid), 0x{} (n.round), {} (n.state), {} (n.sid), 0x{} (n.peerEPoch), {} (my state)",
        );
        let n36 = find(
            "FastLeaderElection",
            "Notification: my state:{}; n.sid:{}, n.state:{}, n.leader:{}, n.round:0x{}, n.peerEpoch:0x{}, n.zxid:0x{}, message format version:0x{}, n.config version:0x{}",
        );
        assert_eq!(n34.kind, n36.kind);
        assert_eq!(
            n34.fields.keys().collect::<Vec<_>>(),
            n36.fields.keys().collect::<Vec<_>>()
        );
        let snap = find("Learner", "Getting a snapshot from leader");
        assert_eq!(snap.kind, "sync.snap");
    }

    /// A wrong entry is reported: the check can fail.
    #[test]
    fn mismatches_are_reported() {
        let text = r#"
[catalogue]
component = "test"
format = "zookeeper-log4j"
line = "2026-11-24 22:02:29,123 [myid:1] - {level5} [main:{class}@1] - {message}"
versions = ["3.4"]
releases = ["3.4.14"]

[[statement]]
class = "Follower"
level = "INFO"
template = "FOLLOWING - LEADER ELECTION TOOK - {}"
versions = ["3.4"]
releases = ["3.4.14"]
kind = "election.took"
example = "FOLLOWING - LEADER ELECTION TOOK - 12345"
fields = { duration_ms = 1, state = "following" }

[[statement]]
class = "QuorumPeer"
level = "INFO"
template = "tickTime set to {}"
versions = ["3.4"]
releases = ["3.4.14"]
kind = "none"
why = "configuration"
example = "LOOKING"

[[statement]]
class = "X"
level = "INFO"
template = "x"
versions = ["3.4"]
releases = ["3.4.14"]
kind = "?"
example = "x"
"#;
        let cat: Catalogue = toml::from_str(text).expect("parses");
        let r = check(&registry(), &[cat]);
        assert_eq!(r.statements, 3);
        assert_eq!(r.failures.len(), 3, "{:?}", r.failures);
        assert!(
            r.failures[0].contains("duration_ms is \"12345\", expected \"1\""),
            "{}",
            r.failures[0]
        );
        assert!(r.failures[1].contains("classified election.looking"));
        assert!(r.failures[2].contains("no kind assigned"));
    }
}
