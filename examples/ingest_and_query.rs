//! Ingest logs into an index and query it, with the zklens library alone.
//!
//! ```text
//! cargo run --example ingest_and_query -- [PATH...] [--query 'kind:session.expired']
//! ```
//!
//! Without paths it reads the bundled `samples/incident-1`. The index goes to a temporary
//! directory; ingesting twice into the same one would read nothing new (checkpoints).

use std::path::PathBuf;

use zklens::app::{Backend, Filter, Local};
use zklens::index::DataDir;
use zklens::parser::Registry;
use zklens::pipeline::batch::{ingest, IngestOptions};
use zklens::time::rfc3339;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut q = "kind:session.expired".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--query" => q = args.next().ok_or("--query needs a query")?,
            _ => paths.push(a.into()),
        }
    }
    if paths.is_empty() {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/incident-1"));
    }

    // The embedded format definitions (no override directories).
    let registry = Registry::load(&[] as &[PathBuf])?;
    let tmp = std::env::temp_dir().join(format!("zklens-example-{}", std::process::id()));
    let dir = DataDir::new(&tmp);
    let summary = ingest(
        &paths,
        &dir,
        &registry,
        &IngestOptions::default(),
        &|_, _| {},
    )?;
    println!(
        "{} files, {} lines, {} events indexed",
        summary.files.len(),
        summary.lines,
        summary.events
    );

    // The application layer: the same answers the CLI, the HTTP API and `--server` give.
    let local = Local::open(&dir, Vec::new())?;
    let filter = Filter {
        limit: Some(20),
        ..Filter::default()
    };
    let found = local.search(&q, &filter)?;
    println!(
        "{} events match {q:?}; the first {}:",
        found.total,
        found.events.len()
    );
    for e in &found.events {
        let ts = e.ts.map(rfc3339).unwrap_or_default();
        println!("{ts} {:<8} {:<24} {}", e.node, e.kind, e.headline());
    }
    drop(local);
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}
