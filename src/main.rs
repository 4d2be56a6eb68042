//! The `zklens` command line: parses the arguments and dispatches to the commands in `cli/`.
//! Exit codes follow ripgrep: 0 found, 1 nothing found, 2 error ([`cli::exit`]).

mod cli;

/// mimalloc instead of glibc's malloc: parsing allocates and frees a few small strings per
/// event on one thread while others index and merge (see the README's Performance section).
/// Built without transparent huge pages (`no_thp` in Cargo.toml), for a short command's start
/// and a lower peak RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Cmd, SnapshotCmd, TxnlogCmd};
use zklens::parser::Registry;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    for w in cli::secret_flag_warnings(&matches) {
        eprintln!("{w}");
    }
    cli::exit(dispatch(cli))
}

fn dispatch(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    // Only the commands that parse load (and validate) the format definitions.
    let registry = || Registry::load(&g.parsers).context("loading format definitions");
    match &cli.cmd {
        Cmd::Ingest(a) => cli::ingest::ingest(a, &g.data_dir(), &registry()?),
        Cmd::Parse(a) => cli::ingest::parse(a, &registry()?),
        Cmd::Query(a) => cli::ask::query(g, a),
        #[cfg(feature = "lake")]
        Cmd::Export(a) => cli::lake::export(g, a),
        Cmd::Sql(a) => cli::sql::sql(g, a),
        Cmd::Run(a) => cli::ask::run(g, a),
        Cmd::Session(a) => cli::ask::session(g, a),
        Cmd::Zxid(a) => cli::ask::zxid(g, a),
        Cmd::Incidents(a) => cli::ask::incidents(g, a),
        Cmd::Incident(a) => cli::ask::incident(g, a),
        Cmd::Skew(a) => cli::ask::skew(g, a),
        Cmd::Recipes(a) => cli::ask::recipes(g, a),
        Cmd::Sources => cli::ask::sources(g),
        Cmd::Formats(a) => match &a.explain {
            Some(f) => cli::tools::explain(&registry()?, f, a.lines),
            None => cli::tools::formats(&registry()?, a.check),
        },
        Cmd::Serve(a) => cli::tools::serve(a, g, &g.data_dir(), registry()?),
        Cmd::Agent(a) => cli::tools::agent(a, g, registry()?),
        Cmd::Trace(c) => cli::trace::run(g, c),
        Cmd::Txnlog(TxnlogCmd::Dump(a)) => cli::txn::txnlog_dump(a),
        Cmd::Snapshot(SnapshotCmd::Dump {
            files,
            max_snapshot_sessions,
        }) => cli::txn::snapshot_dump(files, *max_snapshot_sessions),
        Cmd::Bench(a) => cli::tools::bench(a),
        Cmd::Corpus(a) => cli::tools::corpus(a),
        Cmd::Measure { cmd } => cli::tools::measure(cmd),
    }
}
