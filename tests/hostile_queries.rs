//! Hostile queries and requests (issue 15): the query language's depth, term and wildcard
//! limits from the CLI and over HTTP, the API's time and result-size budgets, its `Host`
//! check, its refusal to listen beyond loopback without a token, and secrets read from files
//! or the environment rather than flags visible in `ps`.

mod common;

use std::path::Path;
use std::process::Output;

use common::{sample_index, zklens};

fn run(data: &Path, args: &[&str]) -> Output {
    zklens(data).args(args).output().expect("run zklens")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Regression: 2,000 `-` or 10,000 `(` overflowed the parser's stack and the CLI died of
/// SIGABRT; 2,000 OR'd wildcards took seconds and hundreds of MB. Each is now a clean error
/// (exit 2) naming the limit and where it was hit.
#[test]
fn the_cli_refuses_hostile_queries_with_exit_2() {
    let data = sample_index();
    let wildcards = vec!["kind:*"; 500].join(" OR ");
    let terms = vec!["kind:x"; 2000].join(" OR ");
    for (q, want) in [
        (
            format!("{}x", "-".repeat(2000)),
            "query: nested deeper than 64 levels of parentheses and negations (the limit) at byte offset 64",
        ),
        (
            format!("{}x", "(".repeat(10_000)),
            "query: nested deeper than 64 levels of parentheses and negations (the limit) at byte offset 64",
        ),
        (
            terms,
            "query: more than 1024 terms (the limit) at byte offset 10240",
        ),
        (
            wildcards,
            "query: the wildcards expand into more than 4096 terms (the limit) at kind:*",
        ),
    ] {
        let o = run(data, &["query", "-c", "--", &q]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", &q[..20], stderr(&o));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
    // Within the limits, the same shapes still run.
    let o = run(
        data,
        &["query", "-c", "--", &format!("{}kind:log", "-".repeat(64))],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}
