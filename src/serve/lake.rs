//! `[sinks.parquet]`: the service writes the event lake as it goes.
//!
//! The lake follows the index's commits. Every event committed to the index lies in the event
//! store, whose committed length grows with each commit; the lake publishes the store in
//! contiguous ranges `[FROM, TO)` of committed bytes. A range's events become files in the
//! layout of `zklens export` named after the range, `part-NODE-sFROM-TO.parquet` (16 hex digits
//! each), written under a dot-name, synced and renamed into place.
//!
//! The files are the lake's checkpoint (as Quickwit commits a source's checkpoint with its
//! split): on start the highest `TO` among the published files is where the lake stands, and the
//! range that ends there is written again (the same events give the same files, byte for byte),
//! which finishes a publication that `kill -9` cut between two of its files; staged dot-files
//! are removed. So after a crash at any moment, every committed event is in exactly one
//! published file once the service has caught up.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::index::IndexHandle;
use crate::lake::{ExportFormat, Exporter};

/// A range's file key: `sFROM-TO`, each 16 hex digits.
fn key(from: u64, to: u64) -> String {
    format!("s{from:016x}-{to:016x}")
}

/// The range a published file's name carries (`part-NODE-sFROM-TO.parquet`).
fn range_of(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".parquet")?;
    let k = stem.get(stem.len().checked_sub(34)?..)?;
    let k = k.strip_prefix('s')?;
    let (from, to) = k.split_once('-')?;
    if from.len() != 16 || to.len() != 16 || !stem[..stem.len() - 34].ends_with('-') {
        return None;
    }
    let (from, to) = (
        u64::from_str_radix(from, 16).ok()?,
        u64::from_str_radix(to, 16).ok()?,
    );
    (from < to).then_some((from, to))
}

/// What the lake holds of the index, and writes the rest.
#[derive(Debug)]
pub struct LakeSink {
    dir: PathBuf,
    max_rows: usize,
    /// Store bytes published (every committed event before this offset is in a file).
    published: u64,
    /// The last range found published, written again on the first publication (it may have
    /// been cut between its files).
    redo: Option<(u64, u64)>,
}

impl LakeSink {
    /// Opens the lake in `dir` (created if needed): finds where it stands and removes the
    /// staged files of a publication that did not finish.
    pub fn open(dir: &Path, max_rows: usize) -> Result<LakeSink> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut last: Option<(u64, u64)> = None;
        let mut stale = Vec::new();
        scan(dir, &mut |p: &Path| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(".part-") && name.ends_with(".tmp") {
                stale.push(p.to_path_buf());
            } else if let Some(r) = range_of(&name) {
                if last.is_none_or(|l| r.1 > l.1) {
                    last = Some(r);
                }
            }
        })?;
        for p in stale {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(LakeSink {
            dir: dir.to_path_buf(),
            max_rows: max_rows.max(1),
            published: last.map_or(0, |r| r.1),
            redo: last,
        })
    }

    /// The store offset up to which every committed event is published.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Publishes what `idx` (a committed index) holds beyond the lake, in ranges of at most
    /// `max_rows` events (whole store frames); returns the files written.
    pub fn publish(&mut self, idx: &IndexHandle) -> Result<Vec<PathBuf>> {
        let committed = idx.state().store_len;
        let mut files = Vec::new();
        if let Some((from, to)) = self.redo.take() {
            if to > committed {
                return Err(Error::Param(format!(
                    "{}: the lake holds events up to store offset {to}, past the index's {committed}: it was written from another index (one lake directory per service)",
                    self.dir.display()
                )));
            }
            let mut events = Vec::new();
            idx.scan_committed(from, Some(to), &mut |mut evs, _| {
                events.append(&mut evs);
                Ok(())
            })?;
            files.extend(self.write(idx, events, from, to)?);
        }
        let mut start = self.published;
        let mut events: Vec<Event> = Vec::new();
        idx.scan_committed(start, None, &mut |mut evs, next| {
            events.append(&mut evs);
            // A full range is published as it fills: memory holds at most one.
            if events.len() >= self.max_rows {
                let full = std::mem::take(&mut events);
                files.extend(self.write(idx, full, start, next)?);
                self.published = next;
                start = next;
            }
            Ok(())
        })?;
        if !events.is_empty() {
            files.extend(self.write(idx, events, start, committed)?);
        }
        self.published = self.published.max(committed);
        Ok(files)
    }

    /// Writes the events of store range `[from, to)` as that range's files.
    fn write(
        &self,
        idx: &IndexHandle,
        mut events: Vec<Event>,
        from: u64,
        to: u64,
    ) -> Result<Vec<PathBuf>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Time order within the range (store order for ties): one file per date and node.
        events.sort_by_key(|e| e.ts.unwrap_or(i64::MIN));
        let formats = idx
            .state()
            .checkpoints
            .sources
            .iter()
            .map(|c| (c.path.clone(), c.format.clone()))
            .collect();
        let mut ex = Exporter::keyed(&self.dir, ExportFormat::Parquet, &key(from, to), formats)?;
        for e in &events {
            ex.push(e)?;
        }
        Ok(ex.finish()?.files)
    }
}

/// Calls `each` with every file under `dir`.
fn scan(dir: &Path, each: &mut dyn FnMut(&Path)) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => scan(&p, each)?,
            Ok(t) if t.is_file() => each(&p),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attrs, Level};
    use crate::index::{DataDir, IndexSink};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn ev(i: u64) -> Event {
        Event {
            // Six hours apart: the events span days.
            ts: Some(1_764_000_000_000_000_000 + i as i64 * 21_600_000_000_000),
            ensemble: crate::event::default_ensemble(),
            node: Arc::from(["zk1", "zk2", "zk3"][(i % 3) as usize]),
            myid: None,
            source: Arc::from("zk/zookeeper.log"),
            offset: i * 100,
            line: i + 1,
            level: Some(Level::Info),
            thread: None,
            logger: None,
            message: format!("event number {i}"),
            kind: Arc::from("log"),
            attrs: Attrs::default(),
            paths: Vec::new(),
            replicas: Vec::new(),
        }
    }

    fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        scan(dir, &mut |p| {
            out.insert(p.to_path_buf(), std::fs::read(p).unwrap_or_default());
        })
        .expect("scan");
        out
    }

    /// A publication cut between its files (one of the last range's files missing, a staged
    /// file left) is finished on reopening, byte for byte as it would have been; later
    /// commits continue the ranges; every event is in exactly one file.
    #[test]
    fn a_cut_publication_is_finished_and_nothing_is_published_twice() {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::new(tmp.path().join("data"));
        let lake = tmp.path().join("lake");
        let mut sink = IndexSink::open(&data, 1).expect("open");
        sink.add(&(0..1000).map(ev).collect::<Vec<_>>())
            .expect("add");
        sink.commit().expect("commit");
        let idx = IndexHandle::open(&data).expect("handle");
        let mut l = LakeSink::open(&lake, 300).expect("lake");
        let written = l.publish(&idx).expect("publish");
        assert_eq!(l.published(), idx.state().store_len);
        let whole = files(&lake);
        assert_eq!(written.len(), whole.len());
        let mut ranges: Vec<(u64, u64)> = whole
            .keys()
            .filter_map(|p| range_of(&p.file_name()?.to_string_lossy()))
            .collect();
        ranges.sort();
        ranges.dedup();
        assert!(ranges.len() >= 3, "{ranges:?}");
        // The cut: the last range lost a file, and a staged one is left.
        let last = *ranges.last().expect("a range");
        let victim = whole
            .keys()
            .rfind(|p| range_of(&p.file_name().unwrap().to_string_lossy()) == Some(last))
            .expect("a file of the last range")
            .clone();
        std::fs::remove_file(&victim).expect("rm");
        let staged = victim.with_file_name(".part-zk1-x.parquet.tmp");
        std::fs::write(&staged, b"half").expect("staged");
        let mut l = LakeSink::open(&lake, 300).expect("reopen");
        assert!(!staged.exists(), "the staged file is removed");
        assert_eq!(l.published(), last.1);
        l.publish(&idx).expect("publish again");
        assert!(
            files(&lake) == whole,
            "the cut publication is finished as it was"
        );
        // More events: the next ranges start where the lake stood.
        sink.add(&(1000..1100).map(ev).collect::<Vec<_>>())
            .expect("add");
        sink.commit().expect("commit");
        let idx = IndexHandle::open(&data).expect("handle");
        let more = l.publish(&idx).expect("publish more");
        assert!(more
            .iter()
            .all(
                |p| range_of(&p.file_name().unwrap().to_string_lossy()).map(|r| r.0)
                    == Some(last.1)
            ));
        let events = crate::lake::read_lake(&lake, &mut |_| true).expect("read");
        let mut seen: Vec<u64> = events.iter().map(|e| e.offset / 100).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1100).collect::<Vec<_>>());
    }

    #[test]
    fn a_files_name_carries_its_range() {
        let name = format!("part-zk1-{}.parquet", key(8, 0x1234));
        assert_eq!(range_of(&name), Some((8, 0x1234)));
        assert_eq!(range_of("part-zk1-0123456789abcdef.parquet"), None);
        assert_eq!(range_of(&format!("part-a-{}.parquet", key(9, 9))), None);
        assert_eq!(range_of("x.parquet"), None);
    }
}
