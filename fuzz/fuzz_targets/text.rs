//! Text and JSON-lines logs: the format is chosen from the input's first lines as ingest does
//! (shipped formats and layouts learned from the sample compete), then every line is parsed and
//! classified.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use zklens::parser::{EntryParser, Registry, SourceMeta};

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry::load(&[] as &[&str]).expect("embedded formats"))
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let sample = &lines[..lines.len().min(128)];
    let choice = registry().choose(sample);
    let meta = SourceMeta {
        node: Arc::from("fuzz"),
        ensemble: zklens::event::default_ensemble(),
        source: Arc::from("fuzz.log"),
        tz: zklens::time::Tz::Utc,
    };
    let mut p = EntryParser::new(choice.format, meta);
    let mut offset = 0u64;
    for (i, l) in lines.iter().enumerate() {
        let _ = p.push(l, offset, i as u64 + 1);
        offset += l.len() as u64 + 1;
    }
    let _ = p.finish();
    let _ = p.take_notices();
});
