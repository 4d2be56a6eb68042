//! Transaction logs, plain or gzip-compressed: every record is decoded (or reported) and the
//! reader stops cleanly.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use zklens::txnlog::TxnLogReader;

fn read(r: impl Read) {
    if let Ok(log) = TxnLogReader::new(r, "fuzz/log.1") {
        for rec in log.take(100_000) {
            if rec.is_err() {
                break;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&[0x1f, 0x8b]) {
        // Decompressed output is bounded: a small input may not become gigabytes.
        read(flate2::read::GzDecoder::new(Cursor::new(data)).take(64 << 20));
    } else {
        read(Cursor::new(data));
    }
});
