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
//!
//! The lake may be a local directory, or an object store given by URL (`s3://bucket/prefix`,
//! `gs://`, `az://` / `abfss://`, with credentials from the environment as each cloud's own
//! tools read them; `file:///dir` writes a local directory through the same code). For an
//! object store the files are written in a local staging directory and each is then put whole
//! (an object is visible complete or not at all); the listing of the store is the checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

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

/// Where the lake is.
enum Target {
    /// A local directory: files are written under dot-names and renamed.
    Dir(PathBuf),
    /// An object store: files are staged locally, then put whole.
    Store {
        url: String,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        staging: PathBuf,
        rt: tokio::runtime::Runtime,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Dir(d) => write!(f, "Dir({})", d.display()),
            Target::Store { url, .. } => write!(f, "Store({url})"),
        }
    }
}

/// The object store a lake URL names, and the prefix under it.
fn object_store_of(url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let bad = |why: String| Error::Param(format!("[sinks.parquet] dir {url:?}: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL".into()))?;
    // The prefix: what follows the bucket, container or host.
    let prefix = |rest: &str| -> Result<ObjectPath> {
        let p = rest.split_once('/').map_or("", |(_, p)| p);
        ObjectPath::parse(p.trim_end_matches('/')).map_err(|e| bad(e.to_string()))
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        "gs" | "gcs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        "file" => {
            // file:///dir: the whole path is the store's root.
            let dir = Path::new(rest);
            if !dir.is_absolute() {
                return Err(bad("a file:// URL needs an absolute path".into()));
            }
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            // A put that was cut leaves its temporary `NAME#N` beside the objects.
            let mut cut = Vec::new();
            scan(dir, &mut |p: &Path| {
                if p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(".parquet#"))
                {
                    cut.push(p.to_path_buf());
                }
            })?;
            for p in cut {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
            let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| bad(e.to_string()))?;
            return Ok((Arc::new(store), ObjectPath::default()));
        }
        other => {
            return Err(bad(format!(
                "unknown scheme {other:?} (s3, gs, az, abfss or file; or a local path)"
            )))
        }
    };
    Ok((store, prefix(rest)?))
}

/// What the lake holds of the index, and writes the rest.
#[derive(Debug)]
pub struct LakeSink {
    target: Target,
    max_rows: usize,
    /// Store bytes published (every committed event before this offset is in a file).
    published: u64,
    /// The last range found published, written again on the first publication (it may have
    /// been cut between its files).
    redo: Option<(u64, u64)>,
}

impl LakeSink {
    /// Opens the lake at `dir` (a local directory, created if needed, or an object store URL;
    /// `staging` is the local directory files are staged in for an object store): finds where
    /// it stands and removes the staged files of a publication that did not finish.
    pub fn open(dir: &Path, staging: &Path, max_rows: usize) -> Result<LakeSink> {
        let text = dir.to_string_lossy();
        let target = if text.contains("://") {
            let (store, prefix) = object_store_of(&text)?;
            // A staging directory of its own, emptied: what is in it was never put.
            if staging.exists() {
                std::fs::remove_dir_all(staging).map_err(|e| Error::io(staging, e))?;
            }
            std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Internal(format!("lake: cannot start a runtime: {e}")))?;
            Target::Store {
                url: text.trim_end_matches('/').to_string(),
                store,
                prefix,
                staging: staging.to_path_buf(),
                rt,
            }
        } else {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            Target::Dir(dir.to_path_buf())
        };
        let mut last: Option<(u64, u64)> = None;
        let mut stale = Vec::new();
        let mut see = |name: &str, p: Option<&Path>| {
            if name.starts_with(".part-") && name.ends_with(".tmp") {
                stale.extend(p.map(Path::to_path_buf));
            } else if let Some(r) = range_of(name) {
                if last.is_none_or(|l| r.1 > l.1) {
                    last = Some(r);
                }
            }
        };
        match &target {
            Target::Dir(d) => scan(d, &mut |p: &Path| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                see(&name, Some(p));
            })?,
            Target::Store {
                url,
                store,
                prefix,
                rt,
                ..
            } => {
                let listed: Vec<object_store::ObjectMeta> = rt
                    .block_on(store.list(Some(prefix)).try_collect())
                    .map_err(|e| Error::Param(format!("lake {url}: cannot list it: {e}")))?;
                for m in listed {
                    if let Some(name) = m.location.filename() {
                        see(name, None);
                    }
                }
            }
        }
        for p in stale {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(LakeSink {
            target,
            max_rows: max_rows.max(1),
            published: last.map_or(0, |r| r.1),
            redo: last,
        })
    }

    /// Where the lake is (a directory or a URL), for messages.
    pub fn location(&self) -> String {
        match &self.target {
            Target::Dir(d) => d.display().to_string(),
            Target::Store { url, .. } => url.clone(),
        }
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
                    self.location()
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
        let formats = idx.state().checkpoints.formats();
        let out = match &self.target {
            Target::Dir(d) => d.as_path(),
            Target::Store { staging, .. } => staging.as_path(),
        };
        let mut ex = Exporter::keyed(out, ExportFormat::Parquet, &key(from, to), formats)?;
        for e in &events {
            ex.push(e)?;
        }
        let files = ex.finish()?.files;
        let Target::Store {
            url,
            store,
            prefix,
            staging,
            rt,
        } = &self.target
        else {
            return Ok(files);
        };
        // Each staged file put whole, then removed here.
        let mut put = Vec::with_capacity(files.len());
        for f in files {
            let rel = f
                .strip_prefix(staging)
                .map_err(|_| Error::Internal("lake: a staged file outside staging".into()))?;
            let mut loc = prefix.clone();
            for part in rel.iter() {
                loc = loc.join(part.to_string_lossy().as_ref());
            }
            let bytes = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
            rt.block_on(store.put(&loc, bytes.into()))
                .map_err(|e| Error::Param(format!("lake {url}: cannot put {loc}: {e}")))?;
            std::fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
            put.push(PathBuf::from(format!("{url}/{}", rel.display())));
        }
        Ok(put)
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
        cut_publication(false);
    }

    /// The same through the object store code (a `file://` URL: staged, then put whole).
    #[test]
    fn a_cut_publication_in_an_object_store_is_finished_too() {
        cut_publication(true);
    }

    fn cut_publication(url: bool) {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = DataDir::new(tmp.path().join("data"));
        let lake = tmp.path().join("lake");
        let staging = tmp.path().join("staging");
        let target = if url {
            PathBuf::from(format!("file://{}", lake.display()))
        } else {
            lake.clone()
        };
        let mut sink = IndexSink::open(&data, 1).expect("open");
        sink.add(&(0..1000).map(ev).collect::<Vec<_>>())
            .expect("add");
        sink.commit().expect("commit");
        let idx = IndexHandle::open(&data).expect("handle");
        let mut l = LakeSink::open(&target, &staging, 300).expect("lake");
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
        let staged = if url {
            std::fs::create_dir_all(&staging).expect("staging");
            staging.join(".part-zk1-x.parquet.tmp")
        } else {
            victim.with_file_name(".part-zk1-x.parquet.tmp")
        };
        std::fs::write(&staged, b"half").expect("staged");
        let mut l = LakeSink::open(&target, &staging, 300).expect("reopen");
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
