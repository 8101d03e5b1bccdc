//! Feeds bytes to the task record codec (`TaskRecord::decode`, which the
//! redb store reads every stored task with). On any bytes the decoder must
//! return `Ok` or `StoreError::Corrupt`, never panic, and never hold more
//! heap than the input's length (plus its error message): the target
//! counts every byte the decoder allocates, through a counting global
//! allocator, rather than relying on libFuzzer's coarse `-malloc_limit_mb`.
//! A record that decodes must encode back to exactly its bytes.
//!
//! Input: byte 0's low bit picks the mode.
//! - 0: the rest is a stored record, as is. Almost every such input stops
//!   at the trailing CRC-32C.
//! - 1: the rest is a record's body; the target appends its CRC-32C, so the
//!   fuzzer reaches the field parsing behind the checksum.
//!
//! The same bytes also build a record field by field (`arbitrary`), which
//! must encode to `encoded_len()` bytes, end in the CRC-32C of the rest,
//! and decode back to itself.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use sysblocks_task_queue::{Priority, RecordState, StoreError, Task, TaskId, TaskRecord};

/// The bytes held now, and the most held since the last `reset_peak`.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// `System`, counting the bytes it hands out.
struct Counting;

// SAFETY: every call is forwarded unchanged to `System`, which upholds
// `GlobalAlloc`'s contract; the counters only observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `layout` is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with this `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        p
    }
}

fn grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The largest error message `decode` builds, with room to spare.
const MESSAGE: usize = 128;

/// Decodes `bytes`, checking the error kind, the heap held, and the round
/// trip.
fn decode(bytes: &[u8]) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = TaskRecord::decode(bytes);
    let held = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        held <= bytes.len() + MESSAGE,
        "decoding {} bytes held {held} bytes of heap",
        bytes.len()
    );
    match result {
        Ok(rec) => {
            assert_eq!(
                rec.encode(),
                bytes,
                "a decoded record encodes back to its bytes"
            );
            assert_eq!(rec.encoded_len(), bytes.len());
        }
        Err(StoreError::Corrupt { .. }) => {}
        Err(e) => panic!("decode gave {e:?}, not Corrupt"),
    }
}

/// CRC-32C (Castagnoli, reflected), bit by bit: a second implementation to
/// check the crate's table-driven one against.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn record(u: &mut Unstructured<'_>) -> ArbResult<TaskRecord> {
    let priority = *u.choose(&[Priority::High, Priority::Normal, Priority::Low])?;
    let state = match u.int_in_range(0u8..=2)? {
        0 => RecordState::Pending {
            run_at: u.arbitrary()?,
        },
        1 => RecordState::Leased {
            until: u.arbitrary()?,
        },
        _ => RecordState::Dead {
            error: u.arbitrary()?,
        },
    };
    Ok(TaskRecord {
        id: TaskId(u.arbitrary()?),
        attempts: u.arbitrary()?,
        restarts: u.arbitrary()?,
        written_at: u.arbitrary()?,
        state,
        task: Task::new(u.arbitrary::<Vec<u8>>()?).with_priority(priority),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        decode(rest);
    } else {
        let mut sealed = rest.to_vec();
        sealed.extend_from_slice(&crc32c(rest).to_le_bytes());
        decode(&sealed);
    }

    if let Ok(rec) = record(&mut Unstructured::new(data)) {
        let bytes = rec.encode();
        assert_eq!(bytes.len(), rec.encoded_len());
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        assert_eq!(
            crc,
            crc32c(body).to_le_bytes(),
            "the record ends in its CRC-32C"
        );
        assert_eq!(TaskRecord::decode(&bytes).unwrap(), rec);
    }
});
