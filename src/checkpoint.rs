//! Checkpoints: where each source stands, in one shape for every source and every driver.
//!
//! The model is Quickwit's. A [`Checkpoint`] is one source's position (its key — a path or a
//! URL —, node, format, the fingerprint of its first bytes, the offset and line of the first byte
//! not indexed yet, the events indexed from it and, for a followed file, the file's identity).
//! [`Checkpoints`] is the committed set of them, plus the zxid ranges indexed from transaction
//! logs. A source emits batches of events each carrying a [`CheckpointDelta`] (where the source
//! stood → where it stands after the batch); a sink applies the delta to its set together with
//! the batch's events and commits both atomically. A delta whose `from` is not where the source
//! stands is refused: it would be a duplicate or a gap.
//!
//! The set is stored as JSON in the index's commit payload; the field names are those of the
//! first layout (`sources`, `txn_ranges`; `path`, `fp`, `fp_len`, `offset`, `line`, `node`,
//! `format`, `events`, `file`), so indexes written before this module existed open and resume.

use std::fs::Metadata;

use serde::{Deserialize, Serialize};

use crate::event::{Event, KIND_LOG};

/// Identity of a file on its file system (device + inode), so a followed file is recognised
/// after a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
}

impl FileId {
    /// The identity of the file `m` describes (0/0 where the platform has none).
    pub fn of(m: &Metadata) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                dev: m.dev(),
                ino: m.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = m;
            FileId { dev: 0, ino: 0 }
        }
    }
}

/// Where one source stands: what has been indexed of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    /// The source's key: its path (batch ingest) or URL (`zklens serve`).
    pub path: String,
    /// Fingerprint (FNV-1a) of its first bytes.
    pub fp: u64,
    /// Bytes the fingerprint covers.
    pub fp_len: u64,
    /// Bytes indexed (offset of the next unread byte).
    pub offset: u64,
    /// Lines read.
    pub line: u64,
    /// Node it was attributed to.
    pub node: String,
    /// Format used (`txnlog`, `snapshot` for binary sources).
    pub format: String,
    /// Events indexed from it.
    pub events: u64,
    /// Identity of the file being followed (`zklens serve` tails files across rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileId>,
    /// How much of a text source's entries were understood (absent for txn logs, snapshots and
    /// sources indexed before it was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// The share of entries with a timestamp below which a source is reported as not understood.
pub const MIN_TIMESTAMPED: f64 = 0.95;

/// How much of a text source was understood: entries read, those with a timestamp, those
/// classified beyond `log`. Counted where entries become events (the batch reader, followed
/// sources), one event at a time with [`Coverage::count`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Coverage {
    /// Entries (events) counted.
    pub entries: u64,
    /// Entries with a timestamp.
    pub timestamped: u64,
    /// Entries with a kind other than `log`.
    pub classified: u64,
}

impl Coverage {
    /// Counts one entry.
    pub fn count(&mut self, e: &Event) {
        self.entries += 1;
        self.timestamped += u64::from(e.ts.is_some());
        self.classified += u64::from(&*e.kind != KIND_LOG);
    }

    /// Both counted together.
    pub fn plus(self, o: Coverage) -> Coverage {
        Coverage {
            entries: self.entries + o.entries,
            timestamped: self.timestamped + o.timestamped,
            classified: self.classified + o.classified,
        }
    }

    /// The share of entries with a timestamp (None: no entries).
    pub fn timestamped_share(&self) -> Option<f64> {
        share(self.timestamped, self.entries)
    }

    /// The share of entries classified beyond `log` (None: no entries).
    pub fn classified_share(&self) -> Option<f64> {
        share(self.classified, self.entries)
    }

    /// Fewer than [`MIN_TIMESTAMPED`] of its entries have a timestamp.
    pub fn poorly_timestamped(&self) -> bool {
        self.timestamped_share()
            .is_some_and(|s| s < MIN_TIMESTAMPED)
    }
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A share as a percentage with one decimal, rounded down (so `100.0%` means all of them).
pub fn percent(share: f64) -> String {
    format!("{:.1}%", (share * 1000.0).floor() / 10.0)
}

impl Checkpoint {
    /// A source not read yet: key `path`, position 0.
    pub fn start(path: impl Into<String>) -> Checkpoint {
        Checkpoint {
            path: path.into(),
            ..Checkpoint::default()
        }
    }

    /// True when `self` and `other` name the same position of the same content (key,
    /// fingerprint, offset, line, file identity and event count; node and format are labels).
    pub fn same_position(&self, other: &Checkpoint) -> bool {
        self.path == other.path
            && self.fp == other.fp
            && self.fp_len == other.fp_len
            && self.offset == other.offset
            && self.line == other.line
            && self.events == other.events
            && self.file == other.file
    }
}

/// How one batch moves its source: from where the source stood before it to where it stands
/// after it. Applied to a [`Checkpoints`] set together with the batch's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDelta {
    /// Where the source stood (None: it was never read, or is read again from scratch without
    /// regard to what was committed — a truncated file, a fresh snapshot).
    pub from: Option<Checkpoint>,
    /// Where it stands after the batch.
    pub to: Checkpoint,
}

impl CheckpointDelta {
    /// A delta from `from` to `to`.
    pub fn new(from: Option<Checkpoint>, to: Checkpoint) -> CheckpointDelta {
        CheckpointDelta { from, to }
    }

    /// The source it moves.
    pub fn key(&self) -> &str {
        &self.to.path
    }
}

/// A delta that does not start where its source stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint of {key}: the batch starts at {from}, but the source stands at {stands} (a duplicate or a gap)")]
pub struct DeltaMismatch {
    /// The source.
    pub key: String,
    /// Where the delta starts (`offset/line`, or `nothing`).
    pub from: String,
    /// Where the set says the source stands.
    pub stands: String,
}

impl From<DeltaMismatch> for crate::error::Error {
    fn from(d: DeltaMismatch) -> Self {
        crate::error::Error::Checkpoint {
            key: d.key,
            from: d.from,
            stands: d.stands,
        }
    }
}

fn describe(c: Option<&Checkpoint>) -> String {
    match c {
        Some(c) => format!(
            "offset {} line {} ({} events, fingerprint {:x}/{})",
            c.offset, c.line, c.events, c.fp, c.fp_len
        ),
        None => "nothing read".into(),
    }
}

/// Every source's checkpoint, and the zxids indexed from transaction logs: what one commit of
/// the index covers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoints {
    /// Every source's checkpoint, in the order they were first committed.
    pub sources: Vec<Checkpoint>,
    /// zxids of the transactions indexed from txn logs (sorted inclusive ranges), so copies of
    /// a transaction on other servers, read later, are not indexed again.
    #[serde(default)]
    pub txn_ranges: Vec<(u64, u64)>,
    /// The same for each ensemble other than [`crate::event::DEFAULT_ENSEMBLE`] (whose ranges
    /// are `txn_ranges`): two ensembles' zxids are unrelated.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ensemble_txn_ranges: std::collections::BTreeMap<String, Vec<(u64, u64)>>,
}

impl Checkpoints {
    /// The checkpoint of the source keyed `key`.
    pub fn get(&self, key: &str) -> Option<&Checkpoint> {
        self.sources.iter().find(|c| c.path == key)
    }

    /// Checks that `delta` starts where its source stands: at its committed checkpoint, or at
    /// nothing for a source never read. A delta with `from: None` restarts its source (a
    /// truncated file read again, a snapshot read whole) and always fits. A delta whose `from`
    /// has another key moves a source (a renamed file found by its content).
    pub fn check(&self, delta: &CheckpointDelta) -> Result<(), DeltaMismatch> {
        let key = delta.from.as_ref().map_or(delta.key(), |f| f.path.as_str());
        let stands = self.get(key);
        let fits = match (&delta.from, stands) {
            (None, _) => true,
            (Some(f), Some(s)) => f.same_position(s),
            (Some(f), None) => f.same_position(&Checkpoint::start(f.path.clone())),
        };
        if fits {
            Ok(())
        } else {
            Err(DeltaMismatch {
                key: key.to_string(),
                from: describe(delta.from.as_ref()),
                stands: describe(stands),
            })
        }
    }

    /// Applies `delta` (see [`Checkpoints::check`]): the source's checkpoint is replaced in place,
    /// or added at the end.
    pub fn apply(&mut self, delta: CheckpointDelta) -> Result<(), DeltaMismatch> {
        self.check(&delta)?;
        self.advance(delta);
        Ok(())
    }

    /// Applies a delta already checked: a moved source's checkpoint takes its old place.
    pub(crate) fn advance(&mut self, delta: CheckpointDelta) {
        if let Some(f) = delta.from.as_ref().filter(|f| f.path != delta.to.path) {
            if let Some(i) = self.sources.iter().position(|c| c.path == f.path) {
                let key = delta.to.path.clone();
                self.sources[i] = delta.to;
                let mut j = 0;
                self.sources.retain(|c| {
                    j += 1;
                    j - 1 == i || c.path != key
                });
                return;
            }
        }
        self.set(delta.to);
    }

    /// Sets a source's checkpoint without checking where it stood (replaced in place, or added
    /// at the end).
    pub fn set(&mut self, cp: Checkpoint) {
        match self.sources.iter_mut().find(|c| c.path == cp.path) {
            Some(c) => *c = cp,
            None => self.sources.push(cp),
        }
    }

    /// Each source's key with the name of the format it was read with.
    pub fn formats(&self) -> std::collections::HashMap<String, String> {
        self.sources
            .iter()
            .map(|c| (c.path.clone(), c.format.clone()))
            .collect()
    }

    /// Adds zxid ranges (inclusive) to those indexed in the default ensemble.
    pub fn add_txn_ranges(&mut self, add: &[(u64, u64)]) {
        merge_ranges(&mut self.txn_ranges, add);
    }

    /// Adds zxid ranges (inclusive) to those indexed in `ensemble`.
    pub fn add_txn_ranges_in(&mut self, ensemble: &str, add: &[(u64, u64)]) {
        if crate::event::is_default_ensemble(ensemble) {
            self.add_txn_ranges(add);
        } else if !add.is_empty() {
            merge_ranges(
                self.ensemble_txn_ranges
                    .entry(ensemble.to_string())
                    .or_default(),
                add,
            );
        }
    }

    /// The zxid ranges indexed in `ensemble`.
    pub fn txn_ranges_in(&self, ensemble: &str) -> &[(u64, u64)] {
        if crate::event::is_default_ensemble(ensemble) {
            &self.txn_ranges
        } else {
            self.ensemble_txn_ranges
                .get(ensemble)
                .map_or(&[], Vec::as_slice)
        }
    }

    /// True when transaction `zxid` was indexed (in the default ensemble).
    pub fn has_txn(&self, zxid: u64) -> bool {
        in_ranges(&self.txn_ranges, zxid)
    }
}

/// True when `z` lies in one of the sorted, disjoint inclusive `ranges`.
pub fn in_ranges(ranges: &[(u64, u64)], z: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 < z);
    ranges.get(i).is_some_and(|r| r.0 <= z)
}

/// Merges `add` into sorted disjoint inclusive ranges (adjacent ranges join).
pub fn merge_ranges(ranges: &mut Vec<(u64, u64)>, add: &[(u64, u64)]) {
    ranges.extend_from_slice(add);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges.iter() {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    *ranges = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64, events: u64) -> Checkpoint {
        Checkpoint {
            path: "a.log".into(),
            fp: 7,
            fp_len: 10,
            offset,
            line: offset / 10,
            events,
            ..Checkpoint::default()
        }
    }

    #[test]
    fn deltas_chain_and_a_gap_or_duplicate_is_refused() {
        let mut set = Checkpoints::default();
        set.apply(CheckpointDelta::new(None, at(10, 1)))
            .expect("first");
        set.apply(CheckpointDelta::new(Some(at(10, 1)), at(20, 2)))
            .expect("next");
        // The same batch again (a duplicate) and one that skips ahead (a gap).
        let dup = set.apply(CheckpointDelta::new(Some(at(10, 1)), at(20, 2)));
        assert!(dup.is_err(), "{dup:?}");
        let gap = set.apply(CheckpointDelta::new(Some(at(30, 3)), at(40, 4)));
        assert!(gap.is_err(), "{gap:?}");
        assert_eq!(set.sources, vec![at(20, 2)]);
        // A source never read: its first batch starts at nothing or at 0.
        let other = Checkpoint {
            path: "b.log".into(),
            offset: 5,
            ..Checkpoint::default()
        };
        set.apply(CheckpointDelta::new(
            Some(Checkpoint::start("b.log")),
            other.clone(),
        ))
        .expect("from 0");
        assert_eq!(set.sources, vec![at(20, 2), other]);
    }

    /// The committed JSON of the first layout (written before this module) reads back, and is
    /// written with the same field names.
    #[test]
    fn old_payload_reads_and_writes_the_same() {
        let old = r#"{"sources":[{"path":"zk1/zookeeper.log","fp":12,"fp_len":1024,"offset":4096,"line":40,"node":"zk1","format":"zookeeper-log4j","events":39},{"path":"file:///x.log","fp":1,"fp_len":2,"offset":3,"line":4,"node":"n","format":"f","events":5,"file":{"dev":1,"ino":2}}],"txn_ranges":[[1,5]]}"#;
        let set: Checkpoints = serde_json::from_str(old).expect("read");
        assert_eq!(set.sources[0].offset, 4096);
        assert_eq!(set.sources[1].file, Some(FileId { dev: 1, ino: 2 }));
        assert!(set.has_txn(3) && !set.has_txn(6));
        assert_eq!(serde_json::to_string(&set).expect("write"), old);
    }

    #[test]
    fn ranges_merge() {
        let mut r = vec![(1, 5), (10, 12)];
        merge_ranges(&mut r, &[(6, 8), (20, 20), (11, 15)]);
        assert_eq!(r, vec![(1, 8), (10, 15), (20, 20)]);
        assert!(in_ranges(&r, 7));
        assert!(!in_ranges(&r, 9));
    }
}
