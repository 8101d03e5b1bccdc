//! Typed payloads (feature `serde`) on the embedded backend: a value goes
//! in as JSON and comes out equal through a worker pool, a payload of
//! another shape fails its attempts with a typed error and ends among the
//! dead letters, where it can still be read. `tests/redis.rs` runs the
//! same on `RedisQueue`.
#![cfg(all(feature = "serde", not(sysblocks_loom)))]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sysblocks_task_queue::{
    Backoff, Delivery, PayloadError, Task, TaskError, TaskQueue, WorkerPool,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Transcode {
    video: String,
    heights: Vec<u32>,
    watermark: Option<String>,
}

fn job(i: u32) -> Transcode {
    Transcode {
        video: format!("upload-{i}.mp4"),
        heights: vec![240 * (i % 4 + 1), 1080],
        watermark: i.is_multiple_of(2).then(|| "ünïcode ✓".to_owned()),
    }
}

#[test]
fn typed_payloads_round_trip_through_a_worker_pool() {
    let q = TaskQueue::builder()
        .max_attempts(2)
        .backoff(Backoff::Fixed(Duration::ZERO))
        .build()
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    let pool = WorkerPool::start(&q, 2, move |d: &Delivery| -> Result<(), TaskError> {
        let t: Transcode = d.deserialize()?;
        g.lock().unwrap().push(t);
        Ok(())
    })
    .unwrap();
    for i in 0..20 {
        q.submit(Task::serialize(&job(i)).unwrap()).unwrap();
    }
    // Another shape: two failed attempts, then a dead letter.
    q.submit(Task::new("not json")).unwrap();
    let start = Instant::now();
    while got.lock().unwrap().len() < 20 || q.dead_letters().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = pool.shutdown(Duration::from_secs(5));
    let mut got = got.lock().unwrap().clone();
    got.sort_by(|a, b| a.video.cmp(&b.video));
    let mut want: Vec<Transcode> = (0..20).map(job).collect();
    want.sort_by(|a, b| a.video.cmp(&b.video));
    assert_eq!(got, want);
    let dead = q.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].error.starts_with("payload does not decode"),
        "{}",
        dead[0].error
    );
    assert!(matches!(
        dead[0].task.deserialize::<Transcode>(),
        Err(PayloadError::Decode(_))
    ));
}

#[test]
fn encode_and_decode_errors_are_typed() {
    // JSON maps need string keys.
    let mut m = BTreeMap::new();
    m.insert(vec![1u8], 2u8);
    assert!(matches!(Task::serialize(&m), Err(PayloadError::Encode(_))));
    let t = Task::serialize(&job(1)).unwrap();
    assert!(matches!(
        t.deserialize::<u32>(),
        Err(PayloadError::Decode(_))
    ));
    assert_eq!(t.deserialize::<Transcode>().unwrap(), job(1));
    // Unsized values serialize too.
    let s = Task::serialize("plain str").unwrap();
    assert_eq!(s.payload(), b"\"plain str\"");
}
