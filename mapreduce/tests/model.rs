//! Property tests against plain sequential models: any text, any settings
//! (threads, R, split size, budget), same answer.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{Emitter, Job, Runner, TaskError, TextInput};

/// (key, value) records; reduce returns the values in arrival order.
struct Collect;

impl Job for Collect {
    type Record = (u8, u32);
    type Key = u8;
    type Value = u32;
    type Output = Vec<u32>;

    fn map(&self, r: &(u8, u32), emit: &mut Emitter<'_, u8, u32>) -> Result<(), TaskError> {
        emit.emit(r.0, r.1);
        Ok(())
    }

    fn reduce(&self, _k: &u8, values: Vec<u32>) -> Result<Vec<u32>, TaskError> {
        Ok(values)
    }
}

fn settings() -> impl Strategy<Value = (usize, usize, u64, u64)> {
    (
        1usize..=2,
        1usize..=5,
        1u64..200,
        prop_oneof![Just(1u64 << 30), 1u64..3000],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn word_count_matches_model(
        text in proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'b'), Just(b'C'), Just(b' '), Just(b'\n'), Just(b'\xc3'), any::<u8>()],
            0..2000,
        ),
        (threads, r, split, budget) in settings(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.txt");
        std::fs::write(&path, &text).unwrap();
        let runner = Runner::builder()
            .threads(threads)
            .partitions(r)
            .split_size(split)
            .memory_budget(budget)
            .spill_dir(tmp.path())
            .build()
            .unwrap();
        let got: Vec<(Vec<u8>, u64)> = runner
            .run(&WordCount, &TextInput::path(&path))
            .unwrap()
            .into_iter()
            .map(|(w, n)| (w.into_vec(), n))
            .collect();
        let want: Vec<_> = common::model_counts(&text).into_iter().collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(common::leftovers(tmp.path()).len(), 1);
    }

    #[test]
    fn values_keep_record_order(
        records in proptest::collection::vec((0u8..6, any::<u32>()), 0..600),
        (threads, r, per_split, budget) in settings(),
    ) {
        let runner = Runner::builder()
            .threads(threads)
            .partitions(r)
            .records_per_split(per_split as usize)
            .memory_budget(budget)
            .build()
            .unwrap();
        let got = runner.run_iter(&Collect, records.clone()).unwrap();
        let mut want: BTreeMap<u8, Vec<u32>> = BTreeMap::new();
        for (k, v) in records {
            want.entry(k).or_default().push(v);
        }
        prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
    }
}
