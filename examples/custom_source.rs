//! A source of your own fed through the pipeline: implement [`Source`] (hand out batches of
//! events, each with the checkpoint delta that moves your source), and every sink takes it —
//! here the index, then a query, then a second run that resumes from the committed checkpoint.
//!
//! ```text
//! cargo run --example custom_source
//! ```

use std::sync::Arc;

use zklens::checkpoint::{Checkpoint, CheckpointDelta};
use zklens::event::{Attrs, Level};
use zklens::index::{DataDir, IndexHandle, IndexSink};
use zklens::pipeline;
use zklens::query::{self, Compiler};
use zklens::sink::Batch;
use zklens::sink::Sink;
use zklens::source::{Progress, Source};
use zklens::time::Tz;
use zklens::{Event, Result};

/// A made-up heartbeat feed: one event per tick, `ticks` in all, 100 per batch. Its position is
/// the number of ticks handed out (kept in the checkpoint's `offset`).
struct Heartbeats {
    at: Checkpoint,
    ticks: u64,
}

impl Heartbeats {
    fn new(ticks: u64, resume: Option<&Checkpoint>) -> Heartbeats {
        let at = resume.cloned().unwrap_or_else(|| Checkpoint {
            node: "zk1".into(),
            format: "heartbeat".into(),
            ..Checkpoint::start("heartbeat://zk1")
        });
        Heartbeats { at, ticks }
    }

    fn tick(&self, i: u64) -> Event {
        Event {
            ts: Some(1_764_000_000_000_000_000 + i as i64 * 1_000_000_000),
            node: Arc::from("zk1"),
            myid: Some(1),
            source: Arc::from(self.at.path.as_str()),
            offset: i,
            line: i + 1,
            level: Some(if i % 50 == 49 {
                Level::Warn
            } else {
                Level::Info
            }),
            thread: None,
            logger: None,
            message: format!("heartbeat {i}"),
            kind: Arc::from(if i % 50 == 49 {
                "heartbeat.late"
            } else {
                "heartbeat"
            }),
            attrs: Attrs::default(),
            paths: Vec::new(),
            replicas: Vec::new(),
            ensemble: zklens::event::default_ensemble(),
        }
    }
}

impl Source for Heartbeats {
    fn key(&self) -> &str {
        &self.at.path
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        if self.at.offset >= self.ticks {
            return Ok(Progress::Done);
        }
        let end = (self.at.offset + 100).min(self.ticks);
        let events: Vec<Event> = (self.at.offset..end).map(|i| self.tick(i)).collect();
        let to = Checkpoint {
            offset: end,
            line: end,
            events: self.at.events + events.len() as u64,
            ..self.at.clone()
        };
        // The delta says where this batch starts and ends; a sink refuses one that does not
        // start where the source stands (a duplicate or a gap).
        emit(Batch::new(
            events,
            CheckpointDelta::new(Some(self.at.clone()), to.clone()),
        ))
        .map_err(zklens::source::sink_error)?;
        self.at = to;
        Ok(Progress::Busy)
    }
}

fn count(dir: &DataDir, q: &str) -> Result<usize> {
    let idx = IndexHandle::open(dir)?;
    let searcher = idx.searcher();
    let compiled = Compiler::new(&idx, &searcher, Tz::Utc).compile(&query::parse(q)?)?;
    Ok(idx.search(compiled.as_ref(), Some(0))?.total)
}

fn main() -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("zklens-custom-{}", std::process::id()));
    let dir = DataDir::new(&tmp);

    // First run: 250 ticks.
    let mut sink = IndexSink::open(&dir, 1)?;
    let rep = pipeline::run(&mut Heartbeats::new(250, None), &mut sink)?;
    sink.close()?;
    println!(
        "first run: {} events in {} batches",
        rep.events, rep.batches
    );

    // Second run: the feed has 400 ticks now; it resumes from the committed checkpoint.
    let mut sink = IndexSink::open(&dir, 1)?;
    let resume = sink.checkpoints().get("heartbeat://zk1").cloned();
    let rep = pipeline::run(&mut Heartbeats::new(400, resume.as_ref()), &mut sink)?;
    sink.close()?;
    println!("second run: {} new events", rep.events);

    println!(
        "indexed: {} heartbeats, {} late",
        count(&dir, "*")?,
        count(&dir, "kind:heartbeat.late")?
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
