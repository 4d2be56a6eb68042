//! Snapshots, plain or gzip-compressed: sessions, the ACL cache and every node.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use zklens::txnlog::SnapshotReader;

fn read(r: impl Read) {
    if let Ok(mut s) = SnapshotReader::new(r, "fuzz/snapshot.1") {
        let _ = s.sessions().len();
        for n in s.by_ref().take(100_000) {
            if n.is_err() {
                break;
            }
        }
        let _ = s.take_notices();
    }
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&[0x1f, 0x8b]) {
        read(flate2::read::GzDecoder::new(Cursor::new(data)).take(64 << 20));
    } else {
        read(Cursor::new(data));
    }
});
