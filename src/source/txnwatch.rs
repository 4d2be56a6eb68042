//! The ensemble's data directories followed: [`TxnLogFollower`] re-reads the transaction logs
//! of every server when they change and hands out the transactions not indexed yet (their zxid
//! ranges travel with the batch); [`SnapshotWatcher`] reads each new snapshot once it is
//! complete, one `snapshot.session` event per session, and checkpoints it (fingerprint and
//! length, keyed by its `file://` URL) so it is read once across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::checkpoint::{CheckpointDelta, Checkpoints};
use crate::error::Result;
use crate::parser::Notice;

use super::{sink_error, Batch, Content, Progress, Source};

/// Which node each data directory belongs to.
pub type DataDirs = Vec<(PathBuf, String)>;

fn node_of(dirs: &DataDirs, path: &Path) -> Option<String> {
    dirs.iter()
        .find(|(d, _)| path.starts_with(d))
        .map(|(_, n)| n.clone())
}

/// Follows the txn logs under the data directories (see the module documentation).
#[derive(Debug)]
pub struct TxnLogFollower {
    dirs: DataDirs,
    ensemble: Arc<str>,
    known: Vec<(u64, u64)>,
    seen: Vec<(PathBuf, u64, Option<SystemTime>)>,
    max_record_len: usize,
}

impl TxnLogFollower {
    /// Follows the txn logs under `dirs`, the servers of `ensemble`; transactions in
    /// `committed`'s ranges for it are not handed out again.
    pub fn new(dirs: DataDirs, committed: &Checkpoints, ensemble: &str) -> TxnLogFollower {
        TxnLogFollower {
            dirs,
            ensemble: Arc::from(ensemble),
            known: committed.txn_ranges_in(ensemble).to_vec(),
            seen: Vec::new(),
            max_record_len: crate::txnlog::DEFAULT_MAX_RECORD_LEN,
        }
    }

    /// Sets the largest txn record read (default
    /// [`DEFAULT_MAX_RECORD_LEN`](crate::txnlog::DEFAULT_MAX_RECORD_LEN)).
    pub fn with_max_record_len(mut self, max: usize) -> Self {
        self.max_record_len = max;
        self
    }
}

impl Source for TxnLogFollower {
    fn key(&self) -> &str {
        "txnlogs"
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        let paths: Vec<PathBuf> = self.dirs.iter().map(|(d, _)| d.clone()).collect();
        // Named after the configured servers below: no need to read myid evidence.
        let (found, _) = super::discover_with(&paths, &super::NodeRule::Dir);
        let mut files: Vec<_> = found
            .into_iter()
            .filter(|f| matches!(f.content, Content::TxnLog { .. }))
            .collect();
        // Name the files after the servers the configuration gives them.
        for f in &mut files {
            if let Some(n) = node_of(&self.dirs, &f.path) {
                f.node = n;
            }
            f.ensemble = self.ensemble.clone();
        }
        let sig: Vec<(PathBuf, u64, Option<SystemTime>)> = files
            .iter()
            .map(|f| {
                let m = std::fs::metadata(&f.path).ok();
                (
                    f.path.clone(),
                    m.as_ref().map_or(0, |m| m.len()),
                    m.and_then(|m| m.modified().ok()),
                )
            })
            .collect();
        if sig == self.seen || files.is_empty() {
            return Ok(Progress::Idle);
        }
        let mut events = Vec::new();
        match super::txn::read_txnlogs_with(&files, &self.known, self.max_record_len, &mut |e| {
            events.push(e);
            Ok(())
        }) {
            Ok(rep) => {
                if !events.is_empty() {
                    // Known from now on, so the next pass does not read them again.
                    crate::checkpoint::merge_ranges(&mut self.known, &rep.ranges);
                    emit(Batch {
                        events,
                        txn_ranges: rep.ranges,
                        txn_ensemble: Some(self.ensemble.clone()),
                        ..Batch::default()
                    })
                    .map_err(sink_error)?;
                }
                self.seen = sig;
            }
            Err(e) => emit(Batch {
                notices: vec![Notice {
                    offset: 0,
                    message: format!("reading transaction logs: {e}"),
                }],
                ..Batch::default()
            })
            .map_err(sink_error)?,
        }
        Ok(Progress::Idle)
    }

    fn idle_wait(&self, poll: Duration) -> Duration {
        poll.max(Duration::from_millis(500)) * 4
    }
}

/// Reads each new snapshot under the data directories once (see the module documentation).
#[derive(Debug)]
pub struct SnapshotWatcher {
    dirs: DataDirs,
    ensemble: Arc<str>,
    /// Length each snapshot (by key) was read at.
    done: BTreeMap<String, u64>,
    max_sessions: usize,
}

impl SnapshotWatcher {
    /// Watches `dirs`, the servers of `ensemble`; snapshots `committed` has a checkpoint for at
    /// their length are done.
    pub fn new(dirs: DataDirs, committed: &Checkpoints, ensemble: &str) -> SnapshotWatcher {
        SnapshotWatcher {
            dirs,
            ensemble: Arc::from(ensemble),
            done: committed
                .sources
                .iter()
                .map(|c| (c.path.clone(), c.offset))
                .collect(),
            max_sessions: crate::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS,
        }
    }

    /// Sets the most sessions of a snapshot's session table held (default
    /// [`DEFAULT_MAX_SNAPSHOT_SESSIONS`](crate::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS)).
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }
}

impl Source for SnapshotWatcher {
    fn key(&self) -> &str {
        "snapshots"
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        let paths: Vec<PathBuf> = self.dirs.iter().map(|(d, _)| d.clone()).collect();
        // Named after the configured servers below: no need to read myid evidence.
        let (found, _) = super::discover_with(&paths, &super::NodeRule::Dir);
        for mut f in found
            .into_iter()
            .filter(|f| matches!(f.content, Content::Snapshot { .. }))
        {
            let key = format!("file://{}", f.path.display());
            let Ok(meta) = std::fs::metadata(&f.path) else {
                continue;
            };
            // Quiet for 2 s: complete.
            let quiet = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|d| d >= Duration::from_secs(2));
            let done = self.done.get(&key).is_some_and(|&o| o == meta.len());
            if !quiet || done {
                continue;
            }
            if let Some(n) = node_of(&self.dirs, &f.path) {
                f.node = n;
            }
            f.ensemble = self.ensemble.clone();
            f.size = meta.len();
            let mut events = Vec::new();
            let res = super::txn::read_snapshot_with(&f, self.max_sessions, &mut |e| {
                events.push(e);
                Ok(())
            });
            let notices = match res {
                Ok((_, notices)) => notices,
                Err(e) => vec![Notice {
                    offset: 0,
                    message: format!("snapshot {}: {e}", f.path.display()),
                }],
            };
            // Done at once: the next pass must not read it again.
            self.done.insert(key.clone(), meta.len());
            let Some(mut cp) = super::txn::binary_checkpoint_as(&f, key) else {
                continue;
            };
            cp.events = events.len() as u64;
            emit(Batch {
                events,
                // Read whole: the delta restarts the snapshot's checkpoint.
                delta: Some(CheckpointDelta::new(None, cp)),
                txn_ranges: Vec::new(),
                txn_ensemble: None,
                bytes: meta.len(),
                notices,
            })
            .map_err(sink_error)?;
        }
        Ok(Progress::Idle)
    }

    fn idle_wait(&self, poll: Duration) -> Duration {
        poll.max(Duration::from_millis(500)) * 4
    }
}
