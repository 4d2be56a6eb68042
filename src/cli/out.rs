//! Standard output for the commands: buffered, and remembering a failed write, so a command
//! that carries on past a bad input file cannot take a closed pipe for one: it asks
//! [`Out::check`] and propagates the write error to [`super::exit`], which alone decides what
//! a closed pipe means.

use std::io::{self, BufWriter, StdoutLock, Write};

/// Buffered standard output that remembers its first failed write.
#[derive(Debug)]
pub struct Out {
    w: BufWriter<StdoutLock<'static>>,
    failed: Option<io::ErrorKind>,
}

impl Out {
    /// Standard output, locked for the command's life.
    pub fn new() -> Out {
        Out {
            w: BufWriter::new(io::stdout().lock()),
            failed: None,
        }
    }

    /// The failed write, if one failed.
    pub fn check(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(io::Error::new(kind, "writing to standard output")),
            None => Ok(()),
        }
    }

    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed.get_or_insert(e.kind());
            }
        }
        r
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.w.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> io::Result<()> {
        let r = self.w.flush();
        self.note(r)
    }
}
