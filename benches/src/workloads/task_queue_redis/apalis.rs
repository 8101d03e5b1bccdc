//! apalis-redis: apalis workers on `RedisStorage`, over one shared
//! `ConnectionManager` (its README's set-up).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::TaskSink;
use apalis_core::error::BoxDynError;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{ConnectionManager, RedisStorage};

use super::{
    payload, produce, wait_for, Admin, Batching, Load, Probe, Round, APALIS_POLL, PRODUCERS, WARM,
    WARM_INDEX, WORKERS,
};

type ApalisStorage = RedisStorage<String, ConnectionManager>;

#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    probe: &Arc<Probe>,
    rt: &tokio::runtime::Runtime,
    admin: &mut Admin,
) -> Round {
    let conn = rt
        .block_on(apalis_redis::connect(admin.url.as_str()))
        .expect("apalis connect");
    let config = apalis_redis::Config::default()
        .queue(format!("r{id}"))
        .batch_size(batching.fetch());
    let done_set = config.done_jobs_set();
    let storage = || ApalisStorage::new(conn.clone()).with_config(config.clone());
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let probe = Arc::clone(probe);
            let worker = WorkerBuilder::new(format!("r{id}-w{w}"))
                .backend(storage().poll_with_interval(APALIS_POLL))
                .build(move |task: String| {
                    probe.start(task.as_bytes());
                    async { Ok::<(), BoxDynError>(()) }
                });
            rt.spawn(worker.run())
        })
        .collect();
    let warm = payload(0, WARM_INDEX);
    let mut s = storage();
    rt.block_on(s.push_bulk(vec![warm; WARM as usize]))
        .expect("apalis push");
    let deadline = Instant::now() + patience;
    let warmed = wait_for(WARM, deadline, || probe.started.load(Ordering::Acquire))
        && wait_for(WARM, deadline, || admin.scard(&done_set));
    assert!(warmed, "apalis: the warm-up tasks did not complete");
    let submitters: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let mut s = storage();
            let handle = rt.handle().clone();
            move |tasks: Vec<String>| {
                if tasks.len() == 1 {
                    for t in tasks {
                        handle.block_on(s.push(t)).expect("apalis push");
                    }
                } else {
                    handle
                        .block_on(s.push_bulk(tasks))
                        .expect("apalis push_bulk");
                }
            }
        })
        .collect();
    let cpu = admin.reset_stats();
    let start = Instant::now();
    produce(n, batching.submit(), load, probe, start, submitters);
    // Started in the handlers first (no server round trips), then
    // acknowledged on the server (apalis acknowledges in batches).
    let deadline = start + patience;
    let done = wait_for(WARM + n, deadline, || probe.started.load(Ordering::Acquire))
        && wait_for(WARM + n, deadline, || admin.scard(&done_set));
    let elapsed = start.elapsed();
    let server = admin.cost(cpu);
    let completed = admin.scard(&done_set);
    for w in workers {
        w.abort();
    }
    Round {
        tasks: if done {
            n
        } else {
            completed.saturating_sub(WARM)
        },
        elapsed,
        latencies_ns: probe.latencies(),
        server,
        timed_out: !done,
    }
}
