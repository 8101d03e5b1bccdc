//! A hot key whose values exceed the memory budget is reduced by
//! `Job::reduce_iter` without its values all being in memory at once, on
//! the runner and on the timely backend: every value object alive is
//! counted, and the reducer sees far fewer alive than the key has.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sysblocks_mapreduce::{
    Codec, Counters, DecodeError, Emitter, Job, Runner, TaskError, TextInput, Values,
};

/// Value objects alive now, and the most seen by a reducer.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK_IN_REDUCE: AtomicUsize = AtomicUsize::new(0);
/// The tests share the counters above: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A `u64` whose live instances are counted.
struct Tracked(u64);

impl Tracked {
    fn new(v: u64) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Self(v)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Codec for Tracked {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        u64::decode(input).map(Self::new)
    }
    fn heap_bytes(&self) -> usize {
        // Counted as bigger than it is, so that a small budget spills often.
        56
    }
}

const LINES: u64 = 200_000;
const HOT: u32 = 0;

/// Line `i` (the number `i`) emits `i` under the hot key, and under key
/// `i % 7 + 1` every 1000th line; no combiner.
struct HotKey;

impl Job for HotKey {
    type Record = [u8];
    type Key = u32;
    type Value = Tracked;
    type Output = (u64, u64);

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, u32, Tracked>) -> Result<(), TaskError> {
        let i: u64 = std::str::from_utf8(line)
            .map_err(TaskError::other)?
            .parse()
            .map_err(TaskError::other)?;
        emit.emit(HOT, Tracked::new(i));
        if i.is_multiple_of(1000) {
            emit.emit((i % 7 + 1) as u32, Tracked::new(i));
        }
        Ok(())
    }

    fn reduce(&self, key: &u32, values: Vec<Tracked>) -> Result<(u64, u64), TaskError> {
        self.reduce_iter(key, Values::from(values), &mut Counters::new())
    }

    /// Count and sum, checking that the values come in input order (they
    /// do: splits in order, no combiner).
    fn reduce_iter(
        &self,
        _key: &u32,
        values: Values<'_, Tracked>,
        counters: &mut Counters,
    ) -> Result<(u64, u64), TaskError> {
        let (mut n, mut sum, mut prev) = (0u64, 0u64, None);
        for v in values {
            if prev.is_some_and(|p| p >= v.0) {
                return Err(TaskError::msg("values out of order"));
            }
            prev = Some(v.0);
            n += 1;
            sum += v.0;
            PEAK_IN_REDUCE.fetch_max(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        counters.add("keys", 1);
        Ok((n, sum))
    }
}

fn input(dir: &std::path::Path) -> TextInput {
    let path = dir.join("numbers.txt");
    let text: String = (0..LINES).map(|i| format!("{i}\n")).collect();
    std::fs::write(&path, text).unwrap();
    TextInput::path(path)
}

/// A 256 KiB budget: the hot key's 200,000 values take about 13 MB by the
/// budget's estimate.
fn runner() -> Runner {
    Runner::builder()
        .threads(2)
        .partitions(3)
        .split_size(64 << 10)
        .memory_budget(256 << 10)
        .build()
        .unwrap()
}

fn check(out: &[(u32, (u64, u64))]) {
    assert_eq!(out.len(), 8);
    assert_eq!(out[0], (HOT, (LINES, LINES * (LINES - 1) / 2)));
    let others: u64 = out[1..].iter().map(|(_, (n, _))| n).sum();
    assert_eq!(others, LINES / 1000);
}

#[test]
fn runner_streams_a_hot_key() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    PEAK_IN_REDUCE.store(0, Ordering::Relaxed);
    let (out, counters) = runner().run_counted(&HotKey, &input(dir.path())).unwrap();
    check(&out);
    assert_eq!(counters["keys"], 8);
    let peak = PEAK_IN_REDUCE.load(Ordering::Relaxed);
    // Collected into a vector, the hot key alone would hold 200,000.
    assert!(peak < LINES as usize / 10, "{peak} values alive in reduce");
}

#[cfg(feature = "timely")]
#[test]
fn cluster_streams_a_hot_key() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    PEAK_IN_REDUCE.store(0, Ordering::Relaxed);
    let got = runner()
        .run_cluster(
            &sysblocks_mapreduce::ClusterConfig::threads(2),
            HotKey,
            &input(dir.path()),
        )
        .unwrap();
    assert_eq!(got.counters["keys"], 8);
    check(&got.into_sorted());
    let peak = PEAK_IN_REDUCE.load(Ordering::Relaxed);
    assert!(peak < LINES as usize / 10, "{peak} values alive in reduce");
}
