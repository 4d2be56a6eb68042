//! User-given layouts (`--layout '%d [%t] %-5p %c - %m%n'`, `regex:...`): the first line of the
//! input is the layout, the rest are lines parsed with it.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use zklens::parser::{EntryParser, Registry, SourceMeta};

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry::load(&[] as &[&str]).expect("embedded formats"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (spec, rest) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(format) = registry().resolve(spec) else {
        return;
    };
    let meta = SourceMeta {
        node: Arc::from("fuzz"),
        ensemble: zklens::event::default_ensemble(),
        source: Arc::from("fuzz.log"),
        tz: zklens::time::Tz::Utc,
    };
    let mut p = EntryParser::new(format, meta);
    let mut offset = 0u64;
    for (i, l) in rest.split('\n').enumerate() {
        let _ = p.push(l.as_bytes(), offset, i as u64 + 1);
        offset += l.len() as u64 + 1;
    }
    let _ = p.finish();
});
