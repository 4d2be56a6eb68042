//! The printer driver (`zklens parse`): each text file read once as a
//! [`TextFile`](crate::source::text::TextFile) source into a [`WriteSink`] whose closure renders
//! the events (the renderer lives above this layer; the binary passes it in).

use crate::error::Result;
use crate::event::Event;
use crate::parser::Registry;
use crate::sink::WriteSink;
use crate::source::text::{TextFile, TextOptions, TextReport};
use crate::source::SourceFile;

/// Reads `file` from its start, handing every event to `write` in order; returns what reading
/// found. An error from `write` (a closed pipe) comes back as `write` raised it.
pub fn print_file(
    file: &SourceFile,
    gzip: bool,
    registry: &Registry,
    opts: &TextOptions,
    write: &mut dyn FnMut(&Event) -> Result<()>,
) -> Result<TextReport> {
    let mut src = TextFile::new(file.clone(), gzip, None, registry, opts);
    let mut sink = WriteSink::new(write);
    super::run(&mut src, &mut sink)?;
    Ok(src.take_report().unwrap_or_default())
}
