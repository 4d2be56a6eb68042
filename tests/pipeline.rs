//! The core driven as a library, with no external process (no Java, no Chromium, not even the
//! zklens binary): a [`VecSource`] into the index sink, then queries. Resume from a checkpoint,
//! a checkpoint delta that does not fit is refused, and a commit is atomic (events sent without
//! a commit are not visible after reopening, and neither is their checkpoint).

use std::sync::Arc;

use zklens::app::{Backend, Filter, Local};
use zklens::checkpoint::{Checkpoint, CheckpointDelta};
use zklens::event::{Attrs, Level};
use zklens::index::{DataDir, IndexHandle, IndexSink};
use zklens::pipeline;
use zklens::query::{self, Compiler};
use zklens::sink::{Batch, Sink};
use zklens::source::{Progress, Source, VecSource};
use zklens::time::Tz;
use zklens::{Error, Event};

const KEY: &str = "memory://zk1";

fn ev(i: u64) -> Event {
    Event {
        ts: Some(1_764_000_000_000_000_000 + i as i64 * 1_000_000_000),
        node: Arc::from("zk1"),
        myid: Some(1),
        source: Arc::from(KEY),
        offset: i,
        line: i + 1,
        level: Some(Level::Info),
        thread: None,
        logger: None,
        message: format!("event {i}"),
        kind: Arc::from(if i % 4 == 0 {
            "session.expired"
        } else {
            "client.connected"
        }),
        attrs: Attrs {
            session: Some(0x100 + i),
            ..Attrs::default()
        },
        paths: Vec::new(),
        replicas: Vec::new(),
        ensemble: zklens::event::default_ensemble(),
    }
}

fn events(n: u64) -> Vec<Event> {
    (0..n).map(ev).collect()
}

/// The messages matching `q`, in time order.
fn query(dir: &DataDir, q: &str) -> Vec<String> {
    let idx = IndexHandle::open(dir).expect("open the index");
    let searcher = idx.searcher();
    let ast = query::parse(q).expect("query parses");
    let compiled = Compiler::new(&idx, &searcher, Tz::Utc)
        .compile(&ast)
        .expect("query compiles");
    let hits = idx.search(compiled.as_ref(), None).expect("search");
    let addrs: Vec<u64> = hits.hits.iter().map(|h| h.1).collect();
    idx.fetch(&addrs)
        .expect("fetch")
        .into_iter()
        .map(|e| e.message)
        .collect()
}

fn committed(dir: &DataDir) -> Option<Checkpoint> {
    IndexHandle::open(dir)
        .expect("open the index")
        .state()
        .checkpoints
        .get(KEY)
        .cloned()
}

#[test]
fn vec_source_into_the_index_then_queried() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path());
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    let mut src = VecSource::new(KEY, events(10), 3);
    let rep = pipeline::run(&mut src, &mut sink).expect("run");
    sink.close().expect("close");
    assert_eq!((rep.batches, rep.events), (4, 10));

    assert_eq!(
        query(&dir, "kind:session.expired"),
        ["event 0", "event 4", "event 8"]
    );
    assert_eq!(query(&dir, "session:0x105"), ["event 5"]);
    assert_eq!(query(&dir, "*").len(), 10);
    let cp = committed(&dir).expect("a checkpoint");
    assert_eq!((cp.offset, cp.events, cp.node.as_str()), (10, 10, "zk1"));

    // The application layer answers from the same index as the CLI and the API would.
    let local = Local::open(&dir, Vec::new()).expect("app over the index");
    let f = Filter::default();
    let found = local.search("kind:session.expired", &f).expect("search");
    assert_eq!(found.total, 3);
    let session = local.session(0x104, &f).expect("session");
    assert_eq!(session.found.total, 1);
    assert_eq!(session.found.events[0].message, "event 4");
    let indexed = local.indexed().expect("indexed");
    assert_eq!(indexed.events, 10);
    assert_eq!(indexed.sources[0].path, KEY);
}

#[test]
fn a_second_run_resumes_from_the_committed_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path());
    // The first run sees the first six events only.
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    pipeline::run(&mut VecSource::new(KEY, events(6), 4), &mut sink).expect("first run");
    sink.close().expect("close");
    assert_eq!(committed(&dir).map(|c| c.offset), Some(6));

    // The second sees all ten, resumed from the checkpoint: only the four new ones are sent.
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    let cp = sink.checkpoints().get(KEY).cloned();
    let mut src = VecSource::new(KEY, events(10), 4).resume(cp.as_ref());
    let rep = pipeline::run(&mut src, &mut sink).expect("second run");
    sink.close().expect("close");
    assert_eq!(rep.events, 4);
    let all = query(&dir, "*");
    let want: Vec<String> = (0..10).map(|i| format!("event {i}")).collect();
    assert_eq!(all, want, "every event exactly once");
    assert_eq!(
        committed(&dir).map(|c| (c.offset, c.events)),
        Some((10, 10))
    );
}

#[test]
fn a_delta_that_does_not_fit_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path());
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    // Collect the source's batches, to replay them out of order.
    let mut batches: Vec<Batch> = Vec::new();
    let mut src = VecSource::new(KEY, events(6), 2);
    while src
        .poll(&mut |b| {
            batches.push(b);
            Ok(())
        })
        .expect("poll")
        != Progress::Done
    {}
    assert_eq!(batches.len(), 3);

    // A gap: the second batch before the first.
    let gap = sink.send(&batches[1]);
    assert!(matches!(gap, Err(Error::Checkpoint { .. })), "{gap:?}");
    sink.send(&batches[0]).expect("the first batch fits");
    // A duplicate: the first batch again.
    let dup = sink.send(&batches[0]);
    assert!(matches!(dup, Err(Error::Checkpoint { .. })), "{dup:?}");
    sink.send(&batches[1]).expect("the second batch fits");
    sink.commit().expect("commit");
    sink.close().expect("close");
    // Refused batches left nothing behind: events 0..4 once each.
    assert_eq!(
        query(&dir, "*"),
        ["event 0", "event 1", "event 2", "event 3"]
    );
    assert_eq!(committed(&dir).map(|c| c.offset), Some(4));

    // A delta claiming a position the source never had, after a reopen.
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    let wrong = Checkpoint {
        offset: 3,
        ..committed(&dir).expect("checkpoint")
    };
    let to = Checkpoint {
        offset: 5,
        ..wrong.clone()
    };
    let r = sink.send(&Batch::new(
        vec![ev(4)],
        CheckpointDelta::new(Some(wrong), to),
    ));
    assert!(matches!(r, Err(Error::Checkpoint { .. })), "{r:?}");
}

#[test]
fn events_without_their_checkpoint_commit_are_not_visible_after_reopening() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path());
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    let mut src = VecSource::new(KEY, events(8), 4);
    // First batch: sent and committed.
    src.poll(&mut |b| sink.send(&b)).expect("first batch");
    sink.commit().expect("commit");
    // Second batch: sent, never committed (a crash).
    src.poll(&mut |b| sink.send(&b)).expect("second batch");
    assert_eq!(sink.checkpoints().get(KEY).map(|c| c.offset), Some(8));
    drop(sink);

    assert_eq!(
        query(&dir, "*"),
        ["event 0", "event 1", "event 2", "event 3"],
        "only what was committed"
    );
    assert_eq!(committed(&dir).map(|c| c.offset), Some(4));
    // And the next run resumes where the committed checkpoint says: nothing lost.
    let mut sink = IndexSink::open(&dir, 1).expect("sink");
    let cp = sink.checkpoints().get(KEY).cloned();
    let mut src = VecSource::new(KEY, events(8), 4).resume(cp.as_ref());
    pipeline::run(&mut src, &mut sink).expect("resume");
    sink.close().expect("close");
    assert_eq!(query(&dir, "*").len(), 8);
}
