//! Ours: `RedisQueue` and a `WorkerPool`, as a user runs them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sysblocks_task_queue::{Delivery, RedisQueue, Task, TaskError, WorkerPool};

use super::{
    payload, produce, wait_for, Admin, Batching, Load, Probe, Round, PRODUCERS, WARM, WARM_INDEX,
    WORKERS,
};

pub(super) fn run(
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    probe: &Arc<Probe>,
    admin: &mut Admin,
) -> Round {
    let q = RedisQueue::builder(admin.url.clone())
        .name(format!("r{id}"))
        .prefetch(batching.fetch())
        .build()
        .expect("RedisQueue");
    let handler = {
        let probe = Arc::clone(probe);
        move |d: &Delivery| -> Result<(), TaskError> {
            probe.start(d.payload());
            Ok(())
        }
    };
    let pool = WorkerPool::start(&q, WORKERS, handler).expect("WorkerPool");
    let warm = payload(0, WARM_INDEX);
    for _ in 0..WARM {
        q.submit(Task::new(warm.as_bytes())).expect("submit");
    }
    let warmed = wait_for(WARM, Instant::now() + patience, || q.stats().completed);
    assert!(warmed, "ours: the warm-up tasks did not complete");
    let submitters: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let q = q.clone();
            move |tasks: Vec<String>| {
                if tasks.len() == 1 {
                    for t in tasks {
                        q.submit(Task::new(t)).expect("submit");
                    }
                } else {
                    q.submit_batch(tasks.into_iter().map(Task::new).collect())
                        .expect("submit_batch");
                }
            }
        })
        .collect();
    let cpu = admin.reset_stats();
    let start = Instant::now();
    produce(n, batching.submit(), load, probe, start, submitters);
    let done = wait_for(WARM + n, start + patience, || q.stats().completed);
    let elapsed = start.elapsed();
    let server = admin.cost(cpu);
    let _ = pool.shutdown(Duration::from_secs(5));
    Round {
        tasks: if done {
            n
        } else {
            q.stats().completed.saturating_sub(WARM)
        },
        elapsed,
        latencies_ns: probe.latencies(),
        server,
        timed_out: !done,
    }
}
