//! A bounded line reader: yields each line with its byte offset and number, never holds more than
//! `max_line` bytes of one line in memory (the rest of a longer line is skipped and counted), and
//! reports whether the last line was cut short by the end of the input.

use std::io::{self, BufRead};

/// One line as read.
#[derive(Debug)]
pub struct Line<'a> {
    /// The bytes, without the terminating `\n` (a `\r` is left for the parser), at most `max_line`.
    pub bytes: &'a [u8],
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
    /// Bytes of the line that were not kept because it was longer than `max_line`.
    pub dropped: u64,
    /// False when the input ended before a `\n` (a partial or truncated last line).
    pub complete: bool,
}

/// Reads lines from a [`BufRead`] with offsets.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes of the inner reader's buffer handed out as the last line, consumed on the next call.
    pending: usize,
    offset: u64,
    number: u64,
    max_line: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader whose first byte is at `offset` in the source and whose first line is `number`.
    pub fn new(inner: R, offset: u64, number: u64, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            pending: 0,
            offset,
            number,
            max_line,
        }
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next line, or `None` at end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.inner.consume(self.pending);
        self.pending = 0;
        self.buf.clear();
        let start = self.offset;
        // Fast path: the whole line is in the reader's buffer; hand it out without copying.
        let found = loop {
            match self.inner.fill_buf() {
                Ok(c) => break memchr::memchr(b'\n', c),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if let Some(i) = found.filter(|&i| i <= self.max_line) {
            let chunk = self.inner.fill_buf()?;
            self.pending = i + 1;
            self.offset += i as u64 + 1;
            self.number += 1;
            return Ok(Some(Line {
                bytes: &chunk[..i],
                offset: start,
                number: self.number,
                dropped: 0,
                complete: true,
            }));
        }
        let mut dropped = 0u64;
        let mut complete = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            let room = self.max_line.saturating_sub(self.buf.len());
            let keep = take.min(room);
            self.buf.extend_from_slice(&chunk[..keep]);
            dropped += (take - keep) as u64;
            let used = if done { take + 1 } else { take };
            self.inner.consume(used);
            self.offset += used as u64;
            if done {
                complete = true;
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(Line {
            bytes: &self.buf,
            offset: start,
            number: self.number,
            dropped,
            complete,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(Vec<u8>, u64, u64, u64, bool)> {
        let mut r = LineReader::new(io::BufReader::with_capacity(7, input), 0, 0, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().expect("in-memory read") {
            out.push((l.bytes.to_vec(), l.offset, l.number, l.dropped, l.complete));
        }
        out
    }

    #[test]
    fn offsets_numbers_and_partial_tail() {
        let v = collect(b"ab\n\ncdef\ngh", 100);
        assert_eq!(
            v,
            vec![
                (b"ab".to_vec(), 0, 1, 0, true),
                (b"".to_vec(), 3, 2, 0, true),
                (b"cdef".to_vec(), 4, 3, 0, true),
                (b"gh".to_vec(), 9, 4, 0, false),
            ]
        );
    }

    #[test]
    fn long_lines_are_bounded() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nok\n");
        let v = collect(&input, 16);
        assert_eq!(v[0].0.len(), 16);
        assert_eq!(v[0].3, 10_000 - 16);
        assert_eq!(v[1], (b"ok".to_vec(), 10_001, 2, 0, true));
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(collect(b"", 10).is_empty());
    }
}
