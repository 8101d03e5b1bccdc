//! A [`Codec`] for any serde type (feature `serde`): [`Bincode`], through
//! bincode 1 (which the timely backend already builds on, so the bridge
//! adds no crate to a build that has it).

use std::borrow::Borrow;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Codec;
use crate::error::DecodeError;

/// A key or value of any `Serialize + DeserializeOwned` type, written to
/// spill runs and the cluster exchange with bincode (varint integers,
/// little-endian), beside the hand-written [`Codec`] impls.
///
/// `Hash`, `Eq` and `Ord` are the wrapped type's, so a `Bincode<K>` key
/// groups, partitions and sorts as `K` would. The hand-written codecs stay
/// the faster choice for hot types (a word count's keys and counts):
/// bincode walks the value through serde, and [`Codec::heap_bytes`] is its
/// encoded size (a walk too), an estimate of the heap it holds.
///
/// ```
/// use sysblocks_mapreduce::{Bincode, Codec};
///
/// let v = Bincode((7u32, vec!["a".to_string()]));
/// let mut buf = Vec::new();
/// v.encode(&mut buf);
/// assert_eq!(Bincode::<(u32, Vec<String>)>::decode(&mut &buf[..]).unwrap(), v);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bincode<T>(pub T);

impl<T> Bincode<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Bincode<T> {
    fn from(v: T) -> Self {
        Self(v)
    }
}

impl<T> std::ops::Deref for Bincode<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Borrow<T> for Bincode<T> {
    fn borrow(&self) -> &T {
        &self.0
    }
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

impl<T: Serialize + DeserializeOwned> Codec for Bincode<T> {
    /// # Panics
    ///
    /// When `T`'s `Serialize` fails: bincode needs the length of every
    /// sequence up front, and a `Serialize` impl may report its own
    /// errors. Inside a task, the panic fails the attempt like an error.
    fn encode(&self, out: &mut Vec<u8>) {
        if let Err(e) = options().serialize_into(&mut *out, &self.0) {
            panic!("Bincode: cannot serialize a value: {e}");
        }
    }

    /// Reads one value; bincode never reads more than `input` holds, nor
    /// allocates for lengths the input cannot hold (its limit is the
    /// input's length).
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let limit = input.len() as u64;
        options()
            .with_limit(limit)
            .deserialize_from(input)
            .map(Self)
            .map_err(|_| DecodeError::new("bincode value"))
    }

    fn heap_bytes(&self) -> usize {
        options()
            .serialized_size(&self.0)
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Shape {
        Point,
        Circle { r: u32 },
        Path(Vec<(i64, i64)>),
    }

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let mut buf = Vec::new();
        Bincode(v).encode(&mut buf);
        buf.push(0xAB);
        let mut input = &buf[..];
        let back = Bincode::<T>::decode(&mut input).unwrap();
        assert_eq!(input, &[0xAB], "decode consumes exactly the encoding");
        let mut again = Vec::new();
        back.encode(&mut again);
        assert_eq!(again, buf[..buf.len() - 1]);
    }

    #[test]
    fn user_types_round_trip() {
        round_trip(Shape::Point);
        round_trip(Shape::Circle { r: 3 });
        round_trip(Shape::Path(vec![(1, -1), (i64::MAX, i64::MIN)]));
        round_trip((String::from("k"), Some(2u8), vec![1.5f64]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn values_round_trip(a: Vec<(u32, String)>, b: Option<i64>) {
            round_trip(a);
            round_trip(b);
        }

        /// Any prefix of an encoding fails to decode (the streaming reader
        /// relies on it), and garbage never panics.
        #[test]
        fn prefixes_fail_and_garbage_is_an_error(v: Vec<String>, bytes: Vec<u8>) {
            let mut buf = Vec::new();
            Bincode(v).encode(&mut buf);
            for cut in 0..buf.len() {
                prop_assert!(Bincode::<Vec<String>>::decode(&mut &buf[..cut]).is_err());
            }
            let _ = Bincode::<Vec<String>>::decode(&mut &bytes[..]);
        }
    }

    #[test]
    fn huge_claimed_lengths_are_refused() {
        // A varint length of 2^60 followed by nothing.
        let bytes = [0xFFu8, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(Bincode::<Vec<u64>>::decode(&mut &bytes[..]).is_err());
    }
}
