//! [`Word`]: a byte-string key stored inline when short.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use crate::codec::{get_varint, put_varint, Codec};
use crate::error::DecodeError;

/// Longest word held inline.
const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

/// A byte string that keeps up to 22 bytes inline (24 bytes in all) and
/// longer ones in a boxed slice.
///
/// It is the key of [`WordCount`](crate::word_count::WordCount): comparing a
/// looked-up word with a table entry then reads the entry only, not a
/// second heap block, which is most of the cost of counting a large
/// vocabulary. `Hash`, `Eq` and `Ord` are those of the bytes (`[u8]`), so a
/// `&[u8]` finds its `Word` in a table ([`Borrow<[u8]>`](Borrow)).
#[derive(Clone)]
pub struct Word(Repr);

// Up to 22 bytes inline, 24 bytes in all.
const _: () = assert!(std::mem::size_of::<Word>() == 24);

impl Word {
    /// A word holding a copy of `bytes`.
    #[must_use]
    #[inline]
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Self(Repr::Inline {
                // `len <= INLINE < 256`.
                len: bytes.len() as u8,
                bytes: buf,
            })
        } else {
            Self(Repr::Heap(bytes.into()))
        }
    }

    /// The bytes.
    #[must_use]
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }

    /// The bytes as a vector.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Inline { .. } => self.as_bytes().to_vec(),
            Repr::Heap(b) => b.into_vec(),
        }
    }
}

impl Deref for Word {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Word {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Word {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for Word {
    #[inline]
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

impl From<&str> for Word {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

impl From<Vec<u8>> for Word {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            Self::new(&v)
        } else {
            Self(Repr::Heap(v.into_boxed_slice()))
        }
    }
}

impl From<Word> for Vec<u8> {
    fn from(w: Word) -> Self {
        w.into_vec()
    }
}

impl Hash for Word {
    /// The hash of the bytes as `[u8]`, as `Borrow<[u8]>` requires.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Word {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Word {}

impl PartialEq<[u8]> for Word {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialEq<&[u8]> for Word {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

impl PartialEq<Vec<u8>> for Word {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_bytes() == &other[..]
    }
}

impl PartialOrd for Word {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Word {
    /// Byte-wise, as `[u8]`.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Word({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl Default for Word {
    fn default() -> Self {
        Self::new(b"")
    }
}

impl Codec for Word {
    /// As `Vec<u8>`: a varint length and the bytes.
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.len() as u64);
        out.extend_from_slice(self.as_bytes());
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let n = usize::try_from(get_varint(input)?).map_err(|_| DecodeError::new("word"))?;
        if input.len() < n {
            return Err(DecodeError::new("word"));
        }
        let (head, rest) = input.split_at(n);
        *input = rest;
        Ok(Self::new(head))
    }

    fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            Repr::Heap(b) => b.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_agree_with_bytes() {
        let h = ahash::RandomState::with_seeds(1, 2, 3, 4);
        for n in [0usize, 1, 21, 22, 23, 64] {
            let bytes: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let w = Word::new(&bytes);
            assert_eq!(w.as_bytes(), &bytes[..]);
            assert_eq!(w.heap_bytes(), if n > INLINE { n } else { 0 });
            assert_eq!(h.hash_one(&w), h.hash_one(&bytes[..]));
            assert_eq!(Word::from(bytes.clone()), w);
            let mut enc = Vec::new();
            w.encode(&mut enc);
            let mut s = &enc[..];
            assert_eq!(Word::decode(&mut s).unwrap(), w);
            assert!(s.is_empty());
            assert!(Word::decode(&mut &enc[..enc.len() - 1]).is_err() || n == 0);
            assert_eq!(w.clone().into_vec(), bytes);
        }
    }

    #[test]
    fn orders_as_bytes() {
        let mut ws: Vec<Word> = ["b", "a", "ab", "", "ba", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
            .iter()
            .map(|s| Word::from(*s))
            .collect();
        ws.sort();
        let got: Vec<&[u8]> = ws.iter().map(|w| w.as_bytes()).collect();
        let mut want: Vec<&[u8]> = vec![
            b"b",
            b"a",
            b"ab",
            b"",
            b"ba",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        want.sort();
        assert_eq!(got, want);
    }
}
