//! Protobuf wire primitives (varint, length-delimited), as gogo-protobuf writes them.
//!
//! Wire types and varint rules: <https://protobuf.dev/programming-guides/encoding/>. Negative
//! `int32`/`int64` values are sign-extended to 64 bits and take ten bytes, as in Go's
//! `encodeVarintGenerated(dAtA, i, uint64(v))` in every `generated.pb.go`.

use super::StorageError;

/// Wire type 0: varint.
pub const VARINT: u8 = 0;
/// Wire type 1: 64-bit.
pub const FIXED64: u8 = 1;
/// Wire type 2: length-delimited.
pub const LEN: u8 = 2;
/// Wire type 5: 32-bit.
pub const FIXED32: u8 = 5;

/// Appends `v` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key (`number << 3 | wire type`).
pub fn put_key(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

/// Appends a length-delimited field.
pub fn put_len(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint field.
pub fn put_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_key(out, number, VARINT);
    put_varint(out, v);
}

/// One decoded field: its number and its payload.
#[derive(Clone, Copy)]
pub enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2.
    Len(&'a [u8]),
    /// Wire types 1 and 5 (never used by Kubernetes messages; skipped).
    Fixed,
}

/// A forward-only reader over one protobuf message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Message path used in error messages, e.g. `Secret.metadata`.
    path: &'a str,
}

impl<'a> Reader<'a> {
    /// Reads the message in `buf`; `path` names it in errors.
    pub fn new(buf: &'a [u8], path: &'a str) -> Self {
        Reader { buf, pos: 0, path }
    }

    fn err(&self, reason: impl Into<String>) -> StorageError {
        StorageError::Protobuf {
            path: self.path.to_string(),
            offset: self.pos,
            reason: reason.into(),
        }
    }

    /// Bytes left after the cursor.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Reads a varint at the cursor.
    pub fn varint(&mut self) -> Result<u64, StorageError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(format!("length {n} runs past the end of the message")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, StorageError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(self.err(format!("invalid field number {number}")));
        }
        let value = match (key & 7) as u8 {
            VARINT => WireValue::Varint(self.varint()?),
            LEN => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
                WireValue::Len(self.take(n)?)
            }
            FIXED64 => {
                self.take(8)?;
                WireValue::Fixed
            }
            FIXED32 => {
                self.take(4)?;
                WireValue::Fixed
            }
            w => return Err(self.err(format!("unsupported wire type {w} for field {number}"))),
        };
        Ok(Some((number as u32, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_negative_sign_extension() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, (-1i64) as u64] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader::new(&out, "t");
            assert_eq!(r.varint().unwrap(), v);
        }
        let mut out = Vec::new();
        put_varint(&mut out, (-1i64) as u64);
        assert_eq!(out.len(), 10);
        put_varint(&mut out, 300);
        assert_eq!(&out[10..], &[0xac, 0x02]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut r = Reader::new(&[0x0a, 0x05, 1, 2], "X");
        let e = r.next_field().err().unwrap().to_string();
        assert!(e.contains("X") && e.contains("past the end"), "{e}");
        let mut r = Reader::new(&[0x08, 0x80], "X");
        assert!(r.next_field().is_err());
    }
}
