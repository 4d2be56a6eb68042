//! The query language: parsing and (against an empty index) compiling any text a user or an HTTP
//! client may send.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        let _ = zklens::query::parse(q);
    }
});
