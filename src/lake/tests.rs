use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;
use crate::event::{Attrs, Event, Level};

fn event(ts: i64, node: &str, msg: &str, session: Option<u64>) -> Event {
    Event {
        ts: Some(ts),
        node: Arc::from(node),
        myid: Some(2),
        source: Arc::from(format!("/logs/{node}/zookeeper.log")),
        offset: 100,
        line: 7,
        level: Some(Level::Info),
        thread: Some(Arc::from("main")),
        logger: Some(Arc::from("ZooKeeperServer")),
        message: msg.to_string(),
        kind: Arc::from("session.expired"),
        attrs: Attrs {
            session,
            zxid: Some(0x5_0000_0003),
            epoch: Some(5),
            timeout_ms: Some(4000),
            ..Attrs::default()
        },
        paths: vec!["/a".into(), "/b,c".into()],
        replicas: vec![],
        ensemble: crate::event::default_ensemble(),
    }
}

const DAY: i64 = 86_400_000_000_000;
/// 2026-11-24T00:00:00Z in nanoseconds.
const T0: i64 = 1_795_478_400_000_000_000;

#[test]
fn the_schema_has_the_types_other_engines_read() {
    let s = event_schema();
    assert_eq!(
        s.metadata().get(SCHEMA_KEY).map(String::as_str),
        Some(SCHEMA_ID)
    );
    let ty = |n: &str| s.field_with_name(n).expect(n).data_type().clone();
    assert_eq!(
        ty("ts"),
        DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()))
    );
    for n in [
        "ensemble", "node", "source", "kind", "level", "logger", "thread",
    ] {
        assert!(matches!(ty(n), DataType::Dictionary(..)), "{n}");
    }
    for n in ["session", "zxid", "src_offset", "line"] {
        assert_eq!(ty(n), DataType::Int64, "{n}");
    }
    for n in ["epoch", "server", "leader", "myid"] {
        assert_eq!(ty(n), DataType::Int32, "{n}");
    }
    assert!(matches!(ty("attributes"), DataType::Map(..)));
    // The files leave the partition column out.
    assert!(file_schema().field_with_name("ensemble").is_err());
    assert_eq!(file_schema().fields().len() + 1, s.fields().len());
}

#[test]
fn events_become_rows_without_losing_anything() {
    let mut b = BatchBuilder::new(true);
    // A session id with the top bit set is negative, as Java prints it.
    let big = 0x9300_0000_0000_0001u64;
    let mut e = event(T0 + 1_234_567, "zk1", "Expiring session", Some(big));
    e.ensemble = std::sync::Arc::from("prod-a");
    e.attrs.server = Some(u64::from(u32::MAX) + 5); // past Int32: kept in attributes
    b.push(&e, Some("zookeeper-log4j")).unwrap();
    b.push(&event(T0, "zk2", "x", None), None).unwrap();
    let batch = b.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    let col = |n: &str| batch.column_by_name(n).expect(n).clone();
    assert_eq!(
        col("ts")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        (T0 + 1_234_567) / 1000
    );
    assert_eq!(
        col("session").as_primitive::<Int64Type>().value(0),
        big as i64
    );
    assert!(col("session").as_primitive::<Int64Type>().value(0) < 0);
    assert!(col("session").is_null(1));
    assert_eq!(
        col("zxid").as_primitive::<Int64Type>().value(0),
        0x5_0000_0003
    );
    assert_eq!(col("epoch").as_primitive::<Int32Type>().value(0), 5);
    assert!(col("server").is_null(0));
    let attrs = col("attributes");
    let m = attrs.as_map();
    let entries: Vec<(String, String)> = (0..m.value_length(0) as usize)
        .map(|i| {
            let k = m
                .keys()
                .as_string::<i32>()
                .value(m.value_offsets()[0] as usize + i);
            let v = m
                .values()
                .as_string::<i32>()
                .value(m.value_offsets()[0] as usize + i);
            (k.to_string(), v.to_string())
        })
        .collect();
    assert!(entries.contains(&("server".into(), (u64::from(u32::MAX) + 5).to_string())));
    assert!(entries.contains(&("timeout_ms".into(), "4000".into())));
    assert!(entries.contains(&("paths".into(), "/a\n/b,c".into())));
    // Each row carries its own event's ensemble.
    let ens = col("ensemble");
    let ens = ens.as_dictionary::<Int32Type>();
    let names = ens.values().as_string::<i32>();
    assert_eq!(names.value(ens.keys().value(0) as usize), "prod-a");
    assert_eq!(names.value(ens.keys().value(1) as usize), "default");
    let src = col("source");
    let d = src.as_dictionary::<Int32Type>();
    let vals = d.values().as_string::<i32>();
    assert_eq!(vals.value(d.keys().value(0) as usize), "zookeeper-log4j");
    assert!(src.is_null(1));
    assert_eq!(date_of(Some(T0 + 5)), "2026-11-24");
    assert_eq!(date_of(Some(T0 - 1)), "2026-11-23");
    assert_eq!(date_of(None), NO_DATE);
}

fn export(dir: &std::path::Path, format: ExportFormat, events: &[Event]) -> ExportReport {
    let formats: HashMap<String, String> = HashMap::new();
    let mut ex = Exporter::new(dir, format, "q", formats).unwrap();
    for e in events {
        let mut e = e.clone();
        e.ensemble = std::sync::Arc::from("prod-a");
        ex.push(&e).unwrap();
    }
    ex.finish().unwrap()
}

fn corpus() -> Vec<Event> {
    let mut v = Vec::new();
    for i in 0..40_000i64 {
        let node = ["zk1", "zk2", "zk3"][(i % 3) as usize];
        v.push(event(
            T0 + i * (DAY / 20_000),
            node,
            &format!("m{i}"),
            Some(0x100 + i as u64),
        ));
    }
    v
}

#[test]
fn an_export_writes_one_sorted_file_per_date_and_node_and_again_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let events = corpus();
    let r = export(tmp.path(), ExportFormat::Parquet, &events);
    assert_eq!(r.rows, 40_000);
    // Two days, three nodes.
    assert_eq!(r.files.len(), 2 * 3, "{:?}", r.files);
    let mut total = 0;
    for f in &r.files {
        let rel = f
            .strip_prefix(tmp.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // The event's ensemble is the first partition.
        assert!(rel.starts_with("ensemble=prod-a/"), "{rel}");
        assert!(rel.contains("/date=2026-11-2"), "{rel}");
        let opts = parquet::file::serialized_reader::ReadOptionsBuilder::new()
            .with_page_index()
            .build();
        let reader = SerializedFileReader::new_with_options(File::open(f).unwrap(), opts).unwrap();
        let md = reader.metadata();
        let kv = md.file_metadata().key_value_metadata().unwrap();
        assert!(kv
            .iter()
            .any(|k| k.key == SCHEMA_KEY && k.value.as_deref() == Some(SCHEMA_ID)));
        for rg in md.row_groups() {
            let sc = rg.sorting_columns().expect("sorting columns declared");
            assert_eq!(sc[0].column_idx as usize, leaf_index("node").unwrap());
            assert_eq!(sc[1].column_idx as usize, leaf_index("ts").unwrap());
            assert!(matches!(
                rg.column(leaf_index("session").unwrap()).compression(),
                parquet::basic::Compression::ZSTD(_)
            ));
            // Bloom filters on session and zxid.
            for c in ["session", "zxid"] {
                let cc = rg.column(leaf_index(c).unwrap());
                assert!(cc.bloom_filter_offset().is_some(), "{c} has a bloom filter");
            }
        }
        // The page index (column and offset indexes) is written.
        assert!(md.offset_index().is_some_and(|o| !o.is_empty()));
        assert!(md.column_index().is_some_and(|c| !c.is_empty()));
        // Rows read back: one node, in time order.
        let rd = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let mut last = i64::MIN;
        for b in rd {
            let b = b.unwrap();
            total += b.num_rows();
            let ts = b
                .column_by_name("ts")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            for i in 0..ts.len() {
                assert!(ts.value(i) >= last);
                last = ts.value(i);
            }
            // The Arrow schema comes back whole (dictionaries included).
            assert!(matches!(
                b.schema().field_with_name("node").unwrap().data_type(),
                DataType::Dictionary(..)
            ));
        }
    }
    assert_eq!(total, 40_000);
    // Nothing half-written is left, and the same export gives the same bytes.
    let bytes: Vec<Vec<u8>> = r.files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let again = export(tmp.path(), ExportFormat::Parquet, &events);
    assert_eq!(again.files, r.files);
    for (f, b) in r.files.iter().zip(&bytes) {
        assert_eq!(&std::fs::read(f).unwrap(), b, "{} changed", f.display());
    }
    let leftovers: Vec<_> = walk(tmp.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn arrow_and_jsonl_exports_hold_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let events = corpus();
    let a = export(&tmp.path().join("a"), ExportFormat::Arrow, &events);
    let mut rows = 0;
    for f in &a.files {
        let r = arrow_ipc::reader::FileReader::try_new(File::open(f).unwrap(), None).unwrap();
        for b in r {
            rows += b.unwrap().num_rows();
        }
    }
    assert_eq!(rows, 40_000);
    let j = export(&tmp.path().join("j"), ExportFormat::Jsonl, &events);
    let mut lines = 0;
    for f in &j.files {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["node"].as_str().unwrap().starts_with("zk"));
            assert_eq!(v["zxid"].as_i64(), Some(0x5_0000_0003));
            lines += 1;
        }
    }
    assert_eq!(lines, 40_000);
}

#[test]
fn a_failed_export_leaves_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ex = Exporter::new(tmp.path(), ExportFormat::Parquet, "q", HashMap::new()).unwrap();
    for e in corpus().iter().take(1000) {
        ex.push(e).unwrap();
    }
    drop(ex); // interrupted before finish
    assert!(walk(tmp.path()).is_empty(), "{:?}", walk(tmp.path()));
}

#[test]
fn events_out_of_time_order_are_kept_in_another_file() {
    let tmp = tempfile::tempdir().unwrap();
    let late = event(T0 + DAY, "zk1", "late", None);
    let early = event(T0, "zk1", "early", None);
    // The 24th, then the 25th (closing the 24th's file), then the 24th again.
    let r = export(
        tmp.path(),
        ExportFormat::Jsonl,
        &[early.clone(), late, early],
    );
    assert_eq!(r.rows, 3);
    assert_eq!(r.files.len(), 3, "{:?}", r.files);
    let lines: usize = r
        .files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(lines, 3);
}
