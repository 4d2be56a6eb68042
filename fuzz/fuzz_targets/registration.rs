//! Service registrations: the data of a znode under the services root (JSON or the plain
//! layout), as any client may write it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = zklens::discovery::registration::parse("/services/fuzz/x", data, 1 << 20, Some(0x1234));
    let _ = zklens::discovery::registration::parse("/services/fuzz/x", data, 1 << 20, None);
});
