//! How keys and values are written to spill runs and read back.

use crate::error::DecodeError;

/// A compact, self-delimiting binary encoding for keys and values, used for
/// the sorted runs spilled to disk when map output exceeds the memory
/// budget, plus an estimate of the heap memory a value holds (for the budget).
///
/// `decode(encode(x)) == x` must hold, and `decode` must consume exactly the
/// bytes `encode` wrote. Integers use LEB128 varints; byte strings are a
/// varint length and the bytes.
pub trait Codec: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one value from the front of `input`, advancing it.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when `input` is truncated or malformed.
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;

    /// Heap bytes owned by `self` (beyond `size_of::<Self>()`), for the
    /// memory budget. The default, 0, is right for plain values.
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint.
pub(crate) fn get_varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let (&b, rest) = input.split_first().ok_or(DecodeError::new("varint"))?;
        *input = rest;
        if shift == 63 && b > 1 {
            return Err(DecodeError::new("varint"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(DecodeError::new("varint"));
        }
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::new(what));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                put_varint(out, *self as u64);
            }
            #[inline]
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                let v = get_varint(input)?;
                <$t>::try_from(v).map_err(|_| DecodeError::new(stringify!($t)))
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                // Zig-zag so small negative numbers stay short.
                let v = *self as i64;
                put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
            }
            #[inline]
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                let z = get_varint(input)?;
                let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
                <$t>::try_from(v).map_err(|_| DecodeError::new(stringify!($t)))
            }
        }
    )*};
}
signed!(i32, i64);

impl Codec for () {
    fn encode(&self, _out: &mut Vec<u8>) {}
    fn decode(_input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl Codec for Vec<u8> {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.len() as u64);
        out.extend_from_slice(self);
    }
    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let n = usize::try_from(get_varint(input)?).map_err(|_| DecodeError::new("bytes"))?;
        Ok(take(input, n, "bytes")?.to_vec())
    }
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.len() as u64);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let n = usize::try_from(get_varint(input)?).map_err(|_| DecodeError::new("string"))?;
        let bytes = take(input, n, "string")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::new("string"))
    }
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

macro_rules! int_vec {
    ($($t:ty),*) => {$(
        impl Codec for Vec<$t> {
            fn encode(&self, out: &mut Vec<u8>) {
                put_varint(out, self.len() as u64);
                for v in self {
                    v.encode(out);
                }
            }
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                let n = usize::try_from(get_varint(input)?)
                    .map_err(|_| DecodeError::new("vector"))?;
                // Each element takes at least one byte: refuse lengths the
                // input cannot hold instead of allocating for them.
                if n > input.len() {
                    return Err(DecodeError::new("vector"));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(<$t>::decode(input)?);
                }
                Ok(v)
            }
            fn heap_bytes(&self) -> usize {
                self.capacity() * std::mem::size_of::<$t>()
            }
        }
    )*};
}
int_vec!(u32, u64, i64);

impl<A: Codec, B: Codec> Codec for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let a = A::decode(input)?;
        let b = B::decode(input)?;
        Ok((a, b))
    }
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes()
    }
}

impl<A: Codec, B: Codec, C: Codec> Codec for (A, B, C) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
        self.2.encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let a = A::decode(input)?;
        let b = B::decode(input)?;
        let c = C::decode(input)?;
        Ok((a, b, c))
    }
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes() + self.2.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(v: T) {
        let mut buf = Vec::new();
        v.encode(&mut buf);
        buf.push(0xAB); // a trailing byte that must be left alone
        let mut input = &buf[..];
        assert_eq!(T::decode(&mut input).unwrap(), v);
        assert_eq!(input, &[0xAB]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn integers_round_trip(a: u64, b: i64, c: u32, d: i32) {
            round_trip(a);
            round_trip(b);
            round_trip(c);
            round_trip(d);
        }

        #[test]
        fn composites_round_trip(k: Vec<u8>, s: String, v: Vec<u64>, t: (u32, Vec<u8>)) {
            round_trip(k);
            round_trip(s);
            round_trip(v);
            round_trip(t);
        }

        #[test]
        fn garbage_never_panics(bytes: Vec<u8>) {
            let mut input = &bytes[..];
            let _ = <(Vec<u8>, Vec<u64>)>::decode(&mut input);
            let mut input = &bytes[..];
            let _ = String::decode(&mut input);
        }
    }

    #[test]
    fn truncated_is_an_error() {
        let mut buf = Vec::new();
        b"hello".to_vec().encode(&mut buf);
        buf.pop();
        assert!(Vec::<u8>::decode(&mut &buf[..]).is_err());
        assert!(u64::decode(&mut &[0x80u8][..]).is_err());
        assert!(u8::decode(&mut &[0x80u8, 0x02][..]).is_err());
    }
}
