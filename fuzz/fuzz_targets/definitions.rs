//! The TOML users write: log-format definitions (`parsers/`), recipe schemes
//! (`queries/recipes.toml`). The first byte picks which.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which % 2 == 0 {
        let _ =
            zklens::parser::Registry::from_sources(&[("fuzz.toml".to_string(), text.to_string())]);
    } else {
        let _ = zklens::recipe::load("fuzz.toml", text);
    }
});
