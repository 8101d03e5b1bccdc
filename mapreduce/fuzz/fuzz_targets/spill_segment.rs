//! Feeds bytes to the spill-run segment reader (with several key and value
//! types) and to every `Codec` impl: each must return `Ok` or a typed
//! error, never panic or allocate what the bytes cannot justify (libFuzzer
//! fails an input that makes the process exceed `-rss_limit_mb` or a
//! single allocation over `-malloc_limit_mb`).
//!
//! Input: byte 0 says by how much the writer's recorded segment length
//! exceeds the bytes (a truncated file), bytes 1-2 the recorded value
//! count; the rest is the segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sysblocks_mapreduce::fuzzing::decode_segment;
use sysblocks_mapreduce::{Codec, TaskError, Word};

fn segment<K: Codec, V: Codec>(bytes: &[u8], len: u64, values: u64) {
    match decode_segment::<K, V>(bytes, len, values) {
        Ok(entries) => {
            let n: u64 = entries.iter().map(|(_, vs)| vs.len() as u64).sum();
            assert_eq!(n, values, "a decoded segment has every recorded value");
        }
        Err(TaskError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
        Err(e) => panic!("untyped error {e:?}"),
    }
}

fn codec<T: Codec>(bytes: &[u8]) {
    let mut input = bytes;
    let _ = T::decode(&mut input);
}

fuzz_target!(|data: &[u8]| {
    let Some((head, bytes)) = data.split_first_chunk::<3>() else {
        return;
    };
    let len = bytes.len() as u64 + u64::from(head[0] & 0x0f);
    let values = u64::from(u16::from_le_bytes([head[1], head[2]]));
    segment::<Vec<u8>, u64>(bytes, len, values);
    segment::<Word, ()>(bytes, len, values);
    segment::<String, Vec<u64>>(bytes, len, values);
    segment::<u32, (i64, Vec<u8>)>(bytes, len, values);
    codec::<u64>(data);
    codec::<i64>(data);
    codec::<u8>(data);
    codec::<i32>(data);
    codec::<Vec<u8>>(data);
    codec::<String>(data);
    codec::<Word>(data);
    codec::<Vec<u32>>(data);
    codec::<Vec<u64>>(data);
    codec::<Vec<i64>>(data);
    codec::<(Vec<u8>, Vec<u64>, usize)>(data);
});
