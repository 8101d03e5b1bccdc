//! Entry points to the spill-run decoder for the fuzz target (`fuzz/`) and
//! the decoder's property tests (`tests/decode.rs`). Built only with the
//! `fuzzing` feature; not a stable API.

use crate::codec::Codec;
use crate::error::TaskError;
use crate::spill::{encode_frame, SegmentReader};

/// Reads a segment as the reduce phase reads one from a run file: `bytes`
/// is what the file holds from the segment's start, `len` and `values` what
/// the writer recorded for it (its length in bytes and its value count;
/// `len` may exceed `bytes.len()`, as for a file truncated after it was
/// written). Returns every entry with all its values, or the first error.
///
/// # Errors
///
/// A [`TaskError::Io`] of kind `InvalidData` for a damaged segment.
pub fn decode_segment<K: Codec, V: Codec>(
    bytes: &[u8],
    len: u64,
    values: u64,
) -> Result<Vec<(K, Vec<V>)>, TaskError> {
    let mut reader = SegmentReader::<K, V, &[u8]>::new(bytes, len, values);
    let mut out = Vec::new();
    while let Some((key, first, rest)) = reader.next_entry()? {
        let mut all = Vec::with_capacity(1 + rest.len());
        all.push(first);
        all.extend(rest);
        out.push((key, all));
    }
    Ok(out)
}

/// Encodes `entries` (each with at least one value) as the writer writes a
/// segment; returns its bytes and its value count, the arguments
/// [`decode_segment`] takes.
///
/// # Panics
///
/// When an entry has no values or encodes to more than 4 GiB.
pub fn encode_segment<K: Codec, V: Codec>(entries: &[(K, Vec<V>)]) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut values = 0u64;
    for (key, vs) in entries {
        assert!(!vs.is_empty(), "an entry has at least one value");
        encode_frame(&mut out, key, vs.len(), vs.iter()).expect("a frame under 4 GiB");
        values += vs.len() as u64;
    }
    (out, values)
}
