//! Decoder for snappy-java's `SnappyOutputStream` format, which ZooKeeper uses for
//! `snapshot.<zxid>.snappy`: an 8-byte magic (`82 'SNAPPY' 00`), two big-endian ints (version,
//! compatible version), then chunks of `int length` + one raw snappy block each.

use std::io::{self, Read};

/// The stream magic.
pub const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Largest uncompressed chunk accepted (snappy-java writes 32 KiB chunks by default).
const MAX_CHUNK: usize = 64 << 20;

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("snappy: {msg}"))
}

/// A `Read` over the decompressed bytes of a snappy-java stream.
#[derive(Debug)]
pub struct SnappyStreamReader<R: Read> {
    inner: R,
    out: Vec<u8>,
    pos: usize,
    comp: Vec<u8>,
    header_read: bool,
    done: bool,
}

impl<R: Read> SnappyStreamReader<R> {
    /// Wraps a reader positioned at the stream magic.
    pub fn new(inner: R) -> Self {
        SnappyStreamReader {
            inner,
            out: Vec::new(),
            pos: 0,
            comp: Vec::new(),
            header_read: false,
            done: false,
        }
    }

    fn read_header_rest(&mut self, first4: [u8; 4]) -> io::Result<()> {
        let mut rest = [0u8; 12];
        self.inner.read_exact(&mut rest)?;
        if first4 != MAGIC[..4] || rest[..4] != MAGIC[4..] {
            return Err(bad("missing stream header".into()));
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            if !self.header_read {
                let mut h = [0u8; 4];
                self.inner.read_exact(&mut h)?;
                self.read_header_rest(h)?;
                self.header_read = true;
            }
            let mut l = [0u8; 4];
            let n = super::read_full(&mut self.inner, &mut l)?;
            if n == 0 {
                self.done = true;
                return Ok(());
            }
            if n < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "snappy: stream cut inside a chunk length",
                ));
            }
            if l == MAGIC[..4] {
                // A concatenated stream: another header follows.
                self.read_header_rest(l)?;
                continue;
            }
            let len = i32::from_be_bytes(l);
            let len = usize::try_from(len)
                .ok()
                .filter(|&n| n <= MAX_CHUNK)
                .ok_or_else(|| bad(format!("unreasonable chunk length {len}")))?;
            self.comp.clear();
            (&mut self.inner)
                .take(len as u64)
                .read_to_end(&mut self.comp)?;
            if self.comp.len() < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "snappy: stream cut inside a chunk",
                ));
            }
            self.out.clear();
            self.pos = 0;
            decompress_block(&self.comp, &mut self.out)?;
            if !self.out.is_empty() {
                return Ok(());
            }
        }
    }
}

impl<R: Read> Read for SnappyStreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decompresses one raw snappy block into `out` (cleared first by the caller).
pub fn decompress_block(src: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut p = 0usize;
    let mut ulen: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *src
            .get(p)
            .ok_or_else(|| bad("block cut inside its length".into()))?;
        p += 1;
        ulen |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(bad("block length varint too long".into()));
        }
    }
    let ulen = usize::try_from(ulen)
        .ok()
        .filter(|&n| n <= MAX_CHUNK)
        .ok_or_else(|| bad(format!("unreasonable block length {ulen}")))?;
    out.reserve(ulen);
    let start = out.len();
    let byte = |p: usize| -> io::Result<usize> {
        src.get(p)
            .map(|&b| usize::from(b))
            .ok_or_else(|| bad("block cut inside an element".into()))
    };
    while p < src.len() {
        let tag = usize::from(src[p]);
        p += 1;
        let (len, offset) = match tag & 3 {
            0 => {
                let mut len = tag >> 2;
                if len >= 60 {
                    let extra = len - 59;
                    len = 0;
                    for i in 0..extra {
                        len |= byte(p + i)? << (8 * i);
                    }
                    p += extra;
                }
                let len = len + 1;
                let lit = src
                    .get(p..p + len)
                    .ok_or_else(|| bad("literal runs past the block".into()))?;
                if out.len() - start + len > ulen {
                    return Err(bad("block longer than its stated length".into()));
                }
                out.extend_from_slice(lit);
                p += len;
                continue;
            }
            1 => {
                let len = ((tag >> 2) & 7) + 4;
                let off = ((tag >> 5) << 8) | byte(p)?;
                p += 1;
                (len, off)
            }
            2 => {
                let off = byte(p)? | (byte(p + 1)? << 8);
                p += 2;
                ((tag >> 2) + 1, off)
            }
            _ => {
                let off =
                    byte(p)? | (byte(p + 1)? << 8) | (byte(p + 2)? << 16) | (byte(p + 3)? << 24);
                p += 4;
                ((tag >> 2) + 1, off)
            }
        };
        let have = out.len() - start;
        if offset == 0 || offset > have {
            return Err(bad(format!(
                "copy offset {offset} outside the {have} bytes so far"
            )));
        }
        if have + len > ulen {
            return Err(bad("block longer than its stated length".into()));
        }
        let from = out.len() - offset;
        for i in 0..len {
            let b = out[from + i];
            out.push(b);
        }
    }
    if out.len() - start != ulen {
        return Err(bad(format!(
            "block decodes to {} bytes, stated {ulen}",
            out.len() - start
        )));
    }
    Ok(())
}
