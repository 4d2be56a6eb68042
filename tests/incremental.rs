//! Live detection reads only what new data can change (`app::incidents_since`, issue 16): for
//! any time `from` where new data would begin, the incidents it returns, with those a full
//! detection found before its `settled` time, are exactly the full detection's. Checked on the
//! recorded ensembles (failovers, quorum losses, rejoins, expiries, recipe holders) at every
//! incident's edges and at evenly spread times, and on a generated corpus with a failover every
//! 10 s, where a late `from` must also read a small part of the index.

use std::path::{Path, PathBuf};

use zklens::app::{self, Recent};
use zklens::incident::Incident;
use zklens::index::{DataDir, IndexHandle};

mod common;
use common::{stdout_of, zklens};

fn ingest(data: &Path, input: &Path) {
    let out = zklens(data)
        .arg("ingest")
        .arg("-q")
        .arg(input)
        .output()
        .expect("run ingest");
    stdout_of(out, "ingest");
}

/// Every instant worth cutting at: each incident's start and end (and 1 ms after), and 20
/// evenly spread times from before the first event to after the last.
fn cuts(full: &[Incident], first: i64, last: i64) -> Vec<i64> {
    const MS: i64 = 1_000_000;
    let mut v = Vec::new();
    for i in full {
        let r = i.record();
        for t in [&r.started_at, &r.ended_at] {
            let ns = zklens::time::parse_time(t, zklens::time::Tz::Utc, 0).expect("time");
            v.extend([ns - MS, ns, ns + MS]);
        }
    }
    let span = (last - first).max(1);
    v.extend((0..=20).map(|k| first - MS + span / 20 * k));
    v.push(last + MS);
    v.sort_unstable();
    v.dedup();
    v
}

/// Checks `incidents_since` against the full detection at every cut; returns the events read
/// at the last cut and by the full skeleton (the first cut reads it all).
fn check(data: &Path, queries: &[PathBuf], what: &str) -> (usize, usize) {
    let idx = IndexHandle::open(&DataDir::new(data)).expect("open index");
    let full = app::incidents(&idx, queries).expect("full detection");
    assert!(!full.is_empty(), "{what}: the recording has incidents");
    let (first, last) = span_of(&idx);
    let cuts = cuts(&full, first, last);
    let mut reads = Vec::new();
    for &from in &cuts {
        let Recent {
            incidents,
            settled,
            events,
        } = app::incidents_since(&idx, queries, from).expect("incremental detection");
        assert!(
            settled <= from,
            "{what}: settled {settled} after from {from}"
        );
        let expected: Vec<&Incident> = full.iter().filter(|i| i.order_key().0 >= settled).collect();
        let got: Vec<&Incident> = incidents.iter().collect();
        assert_eq!(
            got.iter().map(|i| &i.id).collect::<Vec<_>>(),
            expected.iter().map(|i| &i.id).collect::<Vec<_>>(),
            "{what}: incidents from {from} (settled {settled})"
        );
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "{what}: {} from {from} (settled {settled})", e.id);
        }
        reads.push(events);
    }
    (
        reads.last().copied().unwrap_or(0),
        reads.first().copied().unwrap_or(0),
    )
}

/// The first and last event times in the index.
fn span_of(idx: &IndexHandle) -> (i64, i64) {
    let all = tantivy::query::AllQuery;
    let hits = idx.search(&all, None).expect("search");
    let times: Vec<i64> = hits
        .hits
        .iter()
        .map(|h| h.0)
        .filter(|&t| t != i64::MIN)
        .collect();
    (
        times.iter().copied().min().expect("timed events"),
        times.iter().copied().max().expect("timed events"),
    )
}

/// The shipped definitions with every window cut to at most 4 s (an override directory, as a
/// user gives one): they reach back 10 minutes (the storm window), longer than a recording, so
/// with them alone every `from` would read everything.
fn short_windows(dir: &Path) -> PathBuf {
    let queries = dir.join("queries");
    std::fs::create_dir_all(&queries).expect("mkdir");
    let re = regex::Regex::new(r"(?m)^(\w+_ms) = (\d+)$").expect("regex");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut cut = 0;
    for e in std::fs::read_dir(&shipped).expect("queries") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).expect("definition");
        let short = re.replace_all(&text, |c: &regex::Captures| {
            let v: u64 = c[2].parse().expect("number");
            if v > 4000 && &c[1] != "min_notification_timeout_ms" {
                cut += 1;
            }
            format!("{} = {}", &c[1], v.min(4000))
        });
        std::fs::write(queries.join(p.file_name().expect("name")), short.as_bytes())
            .expect("write");
    }
    assert!(cut >= 5, "the shipped windows were found and cut ({cut})");
    queries
}

#[test]
fn incremental_detection_equals_full_on_the_recorded_ensembles() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let tmp = tempfile::tempdir().expect("tempdir");
    let short = short_windows(tmp.path());
    for name in ["incident-1", "incident-2", "incident-3", "live-1", "zk34"] {
        let data = tmp.path().join(name);
        ingest(&data, &samples.join(name));
        check(&data, &[], name);
        check(
            &data,
            std::slice::from_ref(&short),
            &format!("{name}, short windows"),
        );
    }
}

#[test]
fn incremental_detection_reads_what_follows_from_on_a_long_corpus() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let corpus = tmp.path().join("corpus");
    zklens(&tmp.path().join("unused"))
        .arg("corpus")
        .arg(&corpus)
        .args([
            "--size",
            "12MB",
            "--failover-every",
            "10",
            "--profile",
            "mixed",
        ])
        .assert()
        .success();
    let data = tmp.path().join("data");
    ingest(&data, &corpus);
    let short = short_windows(tmp.path());
    let (late, all) = check(&data, std::slice::from_ref(&short), "generated corpus");
    assert!(
        late * 3 < all,
        "a late start reads {late} events of the {all} a full detection reads"
    );
}
