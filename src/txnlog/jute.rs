//! Jute binary primitives (big-endian, `int`-length-prefixed strings/buffers/vectors), Adler32,
//! and Java's UTF-8 decoding (`new String(bytes, UTF_8)`), byte for byte as the JVM does it.

use std::fmt;

/// Adler32 as computed by `java.util.zip.Adler32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32::new()
    }
}

impl Adler32 {
    const MOD: u32 = 65_521;
    /// Largest number of bytes that can be summed before `b` could overflow a `u32`.
    const NMAX: usize = 5_552;

    /// A fresh checksum (value 1).
    pub fn new() -> Self {
        Adler32 { a: 1, b: 0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        for chunk in data.chunks(Self::NMAX) {
            for &byte in chunk {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    /// The checksum of everything fed so far.
    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// Adler32 of one buffer.
pub fn adler32(data: &[u8]) -> u32 {
    let mut a = Adler32::new();
    a.update(data);
    a.value()
}

/// Why a jute value could not be read from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JuteError {
    /// The buffer ended inside the value (Java: `EOFException`).
    Eof {
        /// Position (in the buffer) of the value that could not be read.
        at: usize,
    },
    /// A length prefix below -1 (Java: `IOException("Unreasonable length = ...")`).
    BadLength {
        /// Position of the length prefix.
        at: usize,
        /// The length read.
        len: i32,
    },
    /// A vector with more elements than the reader's limit allows (a multi with more sub-ops
    /// than ZooKeeper could write within its record limit).
    TooMany {
        /// Position of the count.
        at: usize,
        /// The count read.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl JuteError {
    pub(crate) fn is_eof(&self) -> bool {
        matches!(self, JuteError::Eof { .. })
    }

    pub(crate) fn at(&self) -> usize {
        match self {
            JuteError::Eof { at }
            | JuteError::BadLength { at, .. }
            | JuteError::TooMany { at, .. } => *at,
        }
    }
}

impl fmt::Display for JuteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JuteError::Eof { at } => write!(f, "record ends early (at payload byte {at})"),
            JuteError::BadLength { at, len } => {
                write!(f, "unreasonable length {len} (at payload byte {at})")
            }
            JuteError::TooMany { at, count, max } => write!(
                f,
                "{count} elements, more than the limit of {max} (at payload byte {at}): not decoded"
            ),
        }
    }
}

/// A reading position in an in-memory jute buffer (one txn payload, one multi sub-op).
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Eof { at: self.pos });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, JuteError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.u8()? != 0)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, JuteError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, JuteError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A `buffer`: `None` for length -1 (null).
    pub(crate) fn buffer(&mut self) -> Result<Option<&'a [u8]>, JuteError> {
        let at = self.pos;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(JuteError::BadLength { at, len });
        }
        let n = usize::try_from(len).map_err(|_| JuteError::BadLength { at, len })?;
        // An overrun is reported at the length prefix.
        self.take(n).map(Some).map_err(|_| JuteError::Eof { at })
    }

    /// A `ustring`, decoded as Java does; null (length -1) reads as `None`.
    pub(crate) fn string_opt(&mut self) -> Result<Option<String>, JuteError> {
        Ok(self.buffer()?.map(java_utf8))
    }

    /// A `ustring`; null reads as the empty string.
    pub(crate) fn string(&mut self) -> Result<String, JuteError> {
        Ok(self.string_opt()?.unwrap_or_default())
    }

    /// A vector's element count: `None` for -1 (null); other negative counts read as 0 elements,
    /// as `BinaryInputArchive`'s index does.
    pub(crate) fn vec_len(&mut self) -> Result<Option<usize>, JuteError> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        Ok(Some(usize::try_from(n).unwrap_or(0)))
    }
}

const REPL: char = '\u{FFFD}';

fn not_cont(b: u8) -> bool {
    b & 0xc0 != 0x80
}

fn malformed3_2(b1: u8, b2: u8) -> bool {
    (b1 == 0xe0 && (b2 & 0xe0) == 0x80) || not_cont(b2)
}

fn malformed4_2(b1: u8, b2: u8) -> bool {
    (b1 == 0xf0 && !(0x90..=0xbf).contains(&b2))
        || (b1 == 0xf4 && (b2 & 0xf0) != 0x80)
        || not_cont(b2)
}

/// Decodes bytes exactly as Java's `new String(bytes, StandardCharsets.UTF_8)` (JDK 9-21): each
/// malformed sequence becomes one U+FFFD with Java's (not Rust's) idea of how long the malformed
/// sequence is; an encoded surrogate (CESU-8 pair half, `ED A0..BF xx`) becomes one U+FFFD.
pub fn java_utf8(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let sl = bytes.len();
    let mut sp = 0usize;
    while sp < sl {
        let b1 = bytes[sp];
        sp += 1;
        if b1 < 0x80 {
            out.push(char::from(b1));
        } else if (0xc2..=0xdf).contains(&b1) {
            if sp < sl {
                let b2 = bytes[sp];
                if not_cont(b2) {
                    out.push(REPL);
                } else {
                    sp += 1;
                    let c = (u32::from(b1 & 0x1f) << 6) | u32::from(b2 & 0x3f);
                    out.push(char::from_u32(c).unwrap_or(REPL));
                }
                continue;
            }
            out.push(REPL);
            break;
        } else if (0xe0..=0xef).contains(&b1) {
            if sp + 1 < sl {
                let (b2, b3) = (bytes[sp], bytes[sp + 1]);
                if malformed3_2(b1, b2) || not_cont(b3) {
                    out.push(REPL);
                    // Java: sp -= 3; sp += malformed3(): 1 if b2 is bad, else 2.
                    if !malformed3_2(b1, b2) {
                        sp += 1;
                    }
                } else {
                    sp += 2;
                    let c = (u32::from(b1 & 0x0f) << 12)
                        | (u32::from(b2 & 0x3f) << 6)
                        | u32::from(b3 & 0x3f);
                    // Surrogates (D800-DFFF) are not chars: one replacement for the 3 bytes.
                    out.push(char::from_u32(c).unwrap_or(REPL));
                }
                continue;
            }
            if sp < sl && malformed3_2(b1, bytes[sp]) {
                out.push(REPL);
                continue;
            }
            out.push(REPL);
            break;
        } else if (0xf0..=0xf7).contains(&b1) {
            if sp + 2 < sl {
                let (b2, b3, b4) = (bytes[sp], bytes[sp + 1], bytes[sp + 2]);
                let uc = (u32::from(b1 & 0x07) << 18)
                    | (u32::from(b2 & 0x3f) << 12)
                    | (u32::from(b3 & 0x3f) << 6)
                    | u32::from(b4 & 0x3f);
                if not_cont(b2)
                    || not_cont(b3)
                    || not_cont(b4)
                    || !(0x10000..=0x10ffff).contains(&uc)
                {
                    out.push(REPL);
                    // Java: sp -= 4; sp += malformed4(src, sp).
                    if b1 > 0xf4 || malformed4_2(b1, b2) {
                        // 1: nothing more consumed
                    } else if not_cont(b3) {
                        sp += 1;
                    } else {
                        sp += 2;
                    }
                } else {
                    sp += 3;
                    out.push(char::from_u32(uc).unwrap_or(REPL));
                }
                continue;
            }
            if b1 > 0xf4 || (sp < sl && malformed4_2(b1, bytes[sp])) {
                out.push(REPL);
                continue;
            }
            sp += 1;
            out.push(REPL);
            if sp < sl && not_cont(bytes[sp]) {
                continue;
            }
            break;
        } else {
            out.push(REPL);
        }
    }
    out
}
