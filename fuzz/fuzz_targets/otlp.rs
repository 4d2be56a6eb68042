//! `POST /v1/logs` bodies: OTLP/HTTP logs requests (protobuf or JSON, gzip or not) as any
//! shipper may send them, decoded within the service's limits and pushed into a source (resend
//! and rotation logic, entry assembly). The first byte picks the encoding (bit 0: JSON) and
//! whether the rest is gzip'd (bit 1).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use zklens::parser::Registry;
use zklens::source::follow::FollowSpec;
use zklens::source::otlp::{self, Encoding, Limits, Pushed};

fn registry() -> Arc<Registry> {
    static R: OnceLock<Arc<Registry>> = OnceLock::new();
    R.get_or_init(|| Arc::new(Registry::load(&[] as &[&std::path::Path]).expect("formats")))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_body: 1 << 20,
        max_records: 10_000,
    };
    let encoding = if mode & 1 == 1 { Encoding::Json } else { Encoding::Protobuf };
    let plain = if mode & 2 == 2 {
        match otlp::decompress(body, Some("gzip"), limits.max_body) {
            Ok(p) => p,
            Err(_) => return,
        }
    } else {
        body.to_vec()
    };
    let Ok(records) = otlp::decode(&plain, encoding, &limits) else {
        return;
    };
    let spec = FollowSpec {
        key: "otlp://fuzz/x".into(),
        node: "fuzz".into(),
        ensemble: Arc::from("default"),
        format: None,
        tz: zklens::time::Tz::Utc,
        flush: Duration::from_secs(1),
        max_line: 4096,
    };
    let mut p = Pushed::new(spec, registry(), None);
    let _ = p.push(&records);
    // The same again: everything with a position is a resend.
    let _ = p.push(&records);
});
