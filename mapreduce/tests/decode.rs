//! The decoders on damaged input: a spill segment (arbitrary bytes, a valid
//! segment truncated at every point or with bytes flipped) and every
//! [`Codec`] impl on arbitrary bytes give `Ok` or a typed error, never a
//! panic, and never allocate more than the input justifies (checked under
//! an address-space limit). Needs the `fuzzing` feature (the test command
//! builds with `--all-features`).

use std::io::ErrorKind;
use std::time::Duration;

use proptest::prelude::*;
use sysblocks_mapreduce::fuzzing::{decode_segment, encode_segment};
use sysblocks_mapreduce::{Codec, TaskError, Word};
use sysblocks_testkit::{run_isolated, Case, Limits};

/// Whether `r` is the typed error of a damaged run.
fn is_corrupt<T>(r: &Result<T, TaskError>) -> bool {
    matches!(r, Err(TaskError::Io(e)) if e.kind() == ErrorKind::InvalidData)
}

/// Decodes `bytes` with several key and value types; each must give `Ok`
/// or the typed error. A value count above what the segment could hold is
/// never returned.
fn decode_all_ways(bytes: &[u8], len: u64, values: u64) {
    fn check<K: Codec, V: Codec>(bytes: &[u8], len: u64, values: u64) {
        let r = decode_segment::<K, V>(bytes, len, values);
        match &r {
            Ok(entries) => {
                let n: u64 = entries.iter().map(|(_, vs)| vs.len() as u64).sum();
                assert_eq!(n, values, "a decoded segment has every recorded value");
            }
            Err(_) => assert!(is_corrupt(&r), "untyped error"),
        }
    }
    check::<Vec<u8>, u64>(bytes, len, values);
    check::<Word, ()>(bytes, len, values);
    check::<String, Vec<u64>>(bytes, len, values);
    check::<u32, (i64, Vec<u8>)>(bytes, len, values);
    check::<(u8, u16), (i32, usize, Vec<i64>)>(bytes, len, values);
}

/// Every `Codec` impl on `bytes`: `Ok` or `Err`, never a panic; `Ok`
/// consumes no more than there is.
fn codecs_on(bytes: &[u8]) {
    fn one<T: Codec>(bytes: &[u8]) {
        let mut input = bytes;
        if T::decode(&mut input).is_ok() {
            assert!(input.len() <= bytes.len());
        }
    }
    one::<u8>(bytes);
    one::<u16>(bytes);
    one::<u32>(bytes);
    one::<u64>(bytes);
    one::<usize>(bytes);
    one::<i32>(bytes);
    one::<i64>(bytes);
    one::<()>(bytes);
    one::<Vec<u8>>(bytes);
    one::<String>(bytes);
    one::<Vec<u32>>(bytes);
    one::<Vec<u64>>(bytes);
    one::<Vec<i64>>(bytes);
    one::<Word>(bytes);
    one::<(Vec<u8>, u64)>(bytes);
    one::<(String, Vec<u64>, i32)>(bytes);
}

/// Entries of a valid segment: sorted distinct keys, one or more values.
fn entries() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u64>)>> {
    proptest::collection::btree_map(
        proptest::collection::vec(any::<u8>(), 0..12),
        proptest::collection::vec(any::<u64>(), 1..5),
        0..12,
    )
    .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_are_ok_or_typed_errors(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        extra in 0u64..64,
        values in prop_oneof![0u64..64, Just(u64::from(u16::MAX))],
    ) {
        decode_all_ways(&bytes, bytes.len() as u64, values);
        // The writer recorded a longer segment than the file holds.
        decode_all_ways(&bytes, bytes.len() as u64 + extra, values);
        codecs_on(&bytes);
    }

    #[test]
    fn valid_segments_round_trip(entries in entries()) {
        let (bytes, values) = encode_segment(&entries);
        let got = decode_segment::<Vec<u8>, u64>(&bytes, bytes.len() as u64, values).unwrap();
        prop_assert_eq!(got, entries);
    }

    /// A segment cut short, whether the record knows its full length (the
    /// file was truncated) or only the cut (the count says what is
    /// missing), is an error at every cut: nothing is dropped silently.
    #[test]
    fn every_truncation_is_an_error(entries in entries()) {
        let (bytes, values) = encode_segment(&entries);
        for cut in 0..bytes.len() {
            let r = decode_segment::<Vec<u8>, u64>(&bytes[..cut], bytes.len() as u64, values);
            prop_assert!(is_corrupt(&r), "cut at {cut}: {r:?}");
            let r = decode_segment::<Vec<u8>, u64>(&bytes[..cut], cut as u64, values);
            prop_assert!(is_corrupt(&r), "cut at {cut}, recorded so: {r:?}");
        }
    }

    #[test]
    fn flipped_bytes_are_ok_or_typed_errors(
        entries in entries(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let (mut bytes, values) = encode_segment(&entries);
        if !bytes.is_empty() {
            for (at, mask) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
        }
        decode_all_ways(&bytes, bytes.len() as u64, values);
    }

    /// Values that encode to zero bytes (`()`): any number of them per key.
    #[test]
    fn zero_byte_values_round_trip(
        counts in proptest::collection::btree_map(any::<u16>(), 1usize..300, 0..8),
    ) {
        let entries: Vec<(u16, Vec<()>)> =
            counts.into_iter().map(|(k, n)| (k, vec![(); n])).collect();
        let (bytes, values) = encode_segment(&entries);
        let got = decode_segment::<u16, ()>(&bytes, bytes.len() as u64, values).unwrap();
        prop_assert_eq!(got, entries);
    }
}

/// Claims of huge lengths in a few bytes are refused before anything is
/// allocated for them: run under a 1 GiB address-space limit, where
/// reserving what they claim would abort the process.
#[test]
fn huge_claims_allocate_nothing() {
    run_isolated(
        "huge_claims_allocate_nothing",
        &[
            Case {
                name: "frame_claims_4_gib",
                run: || {
                    let bytes = u32::MAX.to_le_bytes();
                    let r = decode_segment::<Vec<u8>, u64>(&bytes, u64::MAX, 1);
                    assert!(is_corrupt(&r), "{r:?}");
                },
            },
            Case {
                name: "key_claims_2_pow_60_bytes",
                run: || {
                    // A frame of 9 bytes whose key says 2^60 bytes follow.
                    let mut frame = Vec::new();
                    (1u64 << 60).encode(&mut frame);
                    frame.push(1);
                    let mut bytes = (frame.len() as u32).to_le_bytes().to_vec();
                    bytes.extend_from_slice(&frame);
                    let r = decode_segment::<Vec<u8>, u64>(&bytes, bytes.len() as u64, 1);
                    assert!(is_corrupt(&r), "{r:?}");
                },
            },
            Case {
                name: "value_count_2_pow_60",
                run: || {
                    // Zero-byte values: the count is checked against the
                    // values the writer recorded, not trusted.
                    let mut frame = Vec::new();
                    7u32.encode(&mut frame);
                    (1u64 << 60).encode(&mut frame);
                    let mut bytes = (frame.len() as u32).to_le_bytes().to_vec();
                    bytes.extend_from_slice(&frame);
                    let r = decode_segment::<u32, ()>(&bytes, bytes.len() as u64, 3);
                    assert!(is_corrupt(&r), "{r:?}");
                },
            },
            Case {
                name: "codec_lengths_2_pow_60",
                run: || {
                    let mut claim = Vec::new();
                    (1u64 << 60).encode(&mut claim);
                    claim.extend_from_slice(&[1, 2, 3]);
                    assert!(Vec::<u8>::decode(&mut &claim[..]).is_err());
                    assert!(String::decode(&mut &claim[..]).is_err());
                    assert!(Word::decode(&mut &claim[..]).is_err());
                    assert!(Vec::<u64>::decode(&mut &claim[..]).is_err());
                    assert!(Vec::<u32>::decode(&mut &claim[..]).is_err());
                    assert!(Vec::<i64>::decode(&mut &claim[..]).is_err());
                },
            },
        ],
        Limits {
            address_space: 1 << 30,
            timeout: Duration::from_secs(20),
        },
    );
}

/// A long run of the arbitrary-bytes property, for when no fuzzer is at
/// hand: `MAPREDUCE_DECODE_CASES=1000000 cargo test -p sysblocks-mapreduce
/// --all-features --release --test decode -- long_random_bytes`. Runs a few
/// cases otherwise.
#[test]
fn long_random_bytes() {
    let cases: u32 = std::env::var("MAPREDUCE_DECODE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(
            &(proptest::collection::vec(any::<u8>(), 0..2000), 0u64..1000),
            |(bytes, values)| {
                decode_all_ways(&bytes, bytes.len() as u64, values);
                codecs_on(&bytes);
                Ok(())
            },
        )
        .unwrap();
}
