//! The layering ARCHITECTURE.md promises, checked on the source: every library module may use
//! only the modules its row of [`ALLOWED`] lists (and itself). A `use crate::…` (or `crate::…`
//! path, or a `super::` that leaves the module) naming any other fails this test with the file
//! and line, so the diagram cannot drift from the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What each library module may use, bottom of the flow first. The flow is not a line:
/// sources and sinks are two branches that only the pipeline joins, the index is a sink that
/// knows nothing of sources or parsing, incident detection reads events and knows nothing of the
/// index. Anything not listed is forbidden; ARCHITECTURE.md's table says the same in words.
const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("time", &["error"]),
    ("event", &["error", "time"]),
    ("checkpoint", &["error", "time", "event"]),
    ("parser", &["error", "time", "event"]),
    ("txnlog", &["error", "time", "event"]),
    ("discovery", &["error", "time", "event"]),
    ("sink", &["error", "time", "event", "checkpoint", "parser"]),
    (
        "source",
        &[
            "error",
            "time",
            "event",
            "checkpoint",
            "parser",
            "txnlog",
            "sink",
        ],
    ),
    ("index", &["error", "time", "event", "checkpoint", "sink"]),
    // The agent is a source that ships instead of indexing: it reads files (source), cuts
    // them into entries (parser) and follows registrations (discovery); it knows nothing of
    // the index or the service.
    (
        "agent",
        &[
            "error",
            "time",
            "event",
            "checkpoint",
            "parser",
            "discovery",
            "source",
        ],
    ),
    ("lake", &["error", "time", "event"]),
    ("query", &["error", "time", "event", "index"]),
    ("incident", &["error", "time", "event", "recipe"]),
    ("recipe", &["error", "time", "event"]),
    ("render", &["error", "time", "event", "incident", "recipe"]),
    (
        "pipeline",
        &[
            "error",
            "time",
            "event",
            "checkpoint",
            "parser",
            "txnlog",
            "source",
            "sink",
            "index",
        ],
    ),
    (
        "app",
        &[
            "error",
            "time",
            "event",
            "checkpoint",
            "index",
            "lake",
            "query",
            "incident",
            "recipe",
            "render",
        ],
    ),
    (
        "remote",
        &["error", "time", "event", "incident", "recipe", "app"],
    ),
    (
        "serve",
        &[
            "error",
            "time",
            "event",
            "checkpoint",
            "parser",
            "txnlog",
            "discovery",
            "source",
            "sink",
            "index",
            "lake",
            "incident",
            "render",
            "pipeline",
            "app",
        ],
    ),
    // Development tools drive the binary as a user would; nothing in the product uses them.
    (
        "devtools",
        &[
            "error",
            "time",
            "event",
            "checkpoint",
            "parser",
            "txnlog",
            "discovery",
            "source",
            "sink",
            "index",
            "lake",
            "query",
            "incident",
            "render",
            "pipeline",
            "app",
            "remote",
            "serve",
        ],
    ),
];

fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    ALLOWED.iter().copied().collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The line without its `//` comment and string literals (so doc text and messages that
/// mention `crate::x` do not count).
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// Top-level modules named by `crate::NAME` (and by `super::NAME` where `super` is the crate
/// root, i.e. in `src/NAME.rs` and `src/NAME/mod.rs`).
fn named_modules(code: &str, super_is_crate: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut prefixes = vec!["crate::"];
    if super_is_crate {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `zklens::crate::` never happens; `foo_crate::` is not ours
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                found.push(name);
            } else if let Some(inner) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`: each item of the group.
                let group: String = inner.chars().take_while(|c| *c != '}').collect();
                for item in group.split(',') {
                    let item = item.trim();
                    let name: String = item
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        found.push(name);
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_module_uses_a_module_it_must_not_know() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = allowed();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut violations = Vec::new();
    let mut unknown = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under src");
        let parts: Vec<&str> = rel
            .iter()
            .map(|s| s.to_str().expect("utf-8 path"))
            .collect();
        // The binary (main.rs, cli/) sits above everything; lib.rs only declares modules.
        if parts[0] == "main.rs" || parts[0] == "lib.rs" || parts[0] == "cli" {
            continue;
        }
        let module = parts[0].trim_end_matches(".rs");
        let Some(&may) = allowed.get(module) else {
            unknown.push(module.to_string());
            continue;
        };
        let super_is_crate = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let text = std::fs::read_to_string(f).expect("source file");
        for (n, line) in text.lines().enumerate() {
            for used in named_modules(&code_of(line), super_is_crate) {
                if used == module {
                    continue;
                }
                match allowed.get(used.as_str()) {
                    Some(_) if may.contains(&used.as_str()) => {}
                    Some(_) => violations.push(format!(
                        "src/{}:{}: `{module}` uses `{used}`, which it must not know: {}",
                        rel.display(),
                        n + 1,
                        line.trim()
                    )),
                    // Re-exports at the crate root (`crate::Error`, `crate::Result`).
                    None if used == "Error" || used == "Result" || used == "Event" => {}
                    None => unknown.push(format!("src/{}:{}: {used}", rel.display(), n + 1)),
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from ALLOWED in tests/architecture.rs (add them where they \
         belong, and to ARCHITECTURE.md): {unknown:#?}"
    );
    assert!(
        violations.is_empty(),
        "imports up the flow:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_imports_and_the_table_has_no_cycle() {
    // The scanner itself: a test of the test, so a parsing slip cannot make it pass vacuously.
    assert_eq!(
        named_modules("use crate::index::IndexHandle;", false),
        ["index"]
    );
    assert_eq!(
        named_modules("use crate::{event::Event, time::Tz};", false),
        ["event", "time"]
    );
    assert_eq!(named_modules("use super::query;", true), ["query"]);
    assert!(named_modules("use super::query;", false).is_empty());
    assert!(named_modules(&code_of(r#"let s = "crate::serve";"#), false).is_empty());
    assert!(named_modules(&code_of("x(); // crate::serve"), false).is_empty());
    // The table is a DAG: nothing may use a module that (transitively) uses it, and every
    // module it names is in it.
    let allowed = allowed();
    fn reaches(
        allowed: &BTreeMap<&str, &[&str]>,
        from: &str,
        to: &str,
        seen: &mut Vec<String>,
    ) -> bool {
        if seen.iter().any(|s| s == from) {
            return false;
        }
        seen.push(from.to_string());
        allowed[from]
            .iter()
            .any(|m| *m == to || reaches(allowed, m, to, seen))
    }
    for (m, uses) in &allowed {
        for u in *uses {
            assert!(
                allowed.contains_key(u),
                "{m} may use {u}, which is not in the table"
            );
            assert!(
                !reaches(&allowed, u, m, &mut Vec::new()),
                "{m} and {u} may use each other"
            );
        }
    }
    assert!(!allowed["index"].contains(&"source"));
    assert!(!allowed["incident"].contains(&"query"));
}
