//! The service driver (`zklens serve`): collector threads, one per source, poll their
//! [`Source`] and send its batches over a bounded channel (when the writer is slow a send blocks
//! and the collector stops reading, so memory stays bounded); one writer owns the [`Sink`], sends
//! it every batch and commits every `every`, so a commit always pairs events with exactly the
//! checkpoint deltas that cover them. A batch whose delta does not fit (a duplicate or a gap) is
//! refused and reported, never committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::sink::Batch;
use crate::sink::Sink;
use crate::source::{Progress, Source};

/// What a collector sends to the writer.
#[derive(Debug)]
pub enum Msg {
    /// A batch from the source keyed `key` (its notices already sent apart).
    Batch {
        /// Source key.
        key: String,
        /// The events and the checkpoint delta covering them.
        batch: Box<Batch>,
    },
    /// Commit now if anything is pending, then answer on the channel: everything sent before
    /// this message is committed when the answer is `Ok` (a push source acknowledges its
    /// sender only then).
    Sync(std::sync::mpsc::Sender<std::result::Result<(), String>>),
    /// Something to tell the operator about a source.
    Notice {
        /// Source key.
        key: String,
        /// The message.
        message: String,
    },
}

/// Where every source stands as handed to the writer (sent, maybe not committed yet): a
/// collector started again for a source resumes there, after whatever is still queued.
pub type Handed = Arc<Mutex<BTreeMap<String, Checkpoint>>>;

fn writer_gone() -> Error {
    Error::io(
        "<index writer>",
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the index writer is gone"),
    )
}

/// Runs a collector: polls `source` until `stop` is set (then lets it hand out what it holds),
/// sending its batches to `tx`; waits `poll` (or what the source asks) when it is idle.
pub fn collect(
    source: &mut dyn Source,
    tx: &SyncSender<Msg>,
    stop: &AtomicBool,
    poll: Duration,
    handed: &Handed,
) {
    let key = source.key().to_string();
    let mut send = |b: Batch| -> Result<()> {
        if let Some(d) = &b.delta {
            handed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(d.key().to_string(), d.to.clone());
        }
        hand_over(tx, &key, b)
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            // Going away (the registration vanished, or shutdown): hand out what is held.
            if let Err(e) = source.finish(&mut send) {
                if !matches!(e, Error::Sink(_)) {
                    let _ = tx.send(Msg::Notice {
                        key: key.clone(),
                        message: e.to_string(),
                    });
                }
            }
            return;
        }
        match source.poll(&mut send) {
            Ok(Progress::Busy) => {}
            Ok(Progress::Idle) => sleep_unless(stop, source.idle_wait(poll)),
            Ok(Progress::Done) => return,
            Err(Error::Sink(_)) => return, // the writer is gone
            Err(e) => {
                let _ = tx.send(Msg::Notice {
                    key: key.clone(),
                    message: e.to_string(),
                });
                std::thread::sleep(poll.max(Duration::from_secs(1)));
            }
        }
    }
}

/// Sends the writer one source's batch: its notices first (as [`Msg::Notice`]s), then the batch
/// without them, unless it moves nothing. Fails only when the writer is gone.
pub fn hand_over(tx: &SyncSender<Msg>, key: &str, b: Batch) -> Result<()> {
    let Batch {
        events,
        delta,
        txn_ranges,
        txn_ensemble,
        bytes,
        notices,
    } = b;
    for n in notices {
        let msg = Msg::Notice {
            key: key.to_string(),
            message: n.message,
        };
        tx.send(msg).map_err(|_| writer_gone())?;
    }
    if events.is_empty() && delta.is_none() && txn_ranges.is_empty() {
        return Ok(());
    }
    let batch = Batch {
        events,
        delta,
        txn_ranges,
        txn_ensemble,
        bytes,
        notices: Vec::new(),
    };
    tx.send(Msg::Batch {
        key: key.to_string(),
        batch: Box::new(batch),
    })
    .map_err(|_| writer_gone())
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(25).min(d));
    }
}

/// The writer: the one owner of `sink`. Sends it what collectors send and commits every
/// `every`; ends (with a final commit) when every sender is gone. Notices, and batches refused
/// because their delta does not fit, go to `notice` (source key, message).
pub fn write(
    sink: &mut dyn Sink,
    rx: &Receiver<Msg>,
    every: Duration,
    notice: &mut dyn FnMut(&str, &str),
) -> Result<()> {
    let mut dirty = false;
    let mut last = Instant::now();
    loop {
        let msg = match rx.recv_timeout(every) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(Msg::Batch { key, batch }) => match sink.send(&batch) {
                Ok(()) => dirty = true,
                Err(m @ Error::Checkpoint { .. }) => {
                    notice(&key, &format!("batch refused: {m}"));
                }
                Err(e) => return Err(e),
            },
            Some(Msg::Notice { key, message }) => notice(&key, &message),
            Some(Msg::Sync(answer)) => {
                if dirty {
                    if let Err(e) = sink.commit() {
                        let _ = answer.send(Err(e.to_string()));
                        return Err(e);
                    }
                    dirty = false;
                    last = Instant::now();
                }
                let _ = answer.send(Ok(()));
            }
            None => {}
        }
        if dirty && last.elapsed() >= every {
            sink.commit()?;
            dirty = false;
            last = Instant::now();
        }
    }
    if dirty {
        sink.commit()?;
    }
    Ok(())
}
