//! Plain commands from plain threads: the classic reliable list queue
//! (`LPUSH`, `BLMOVE` into the worker's processing list, `LREM`), and the
//! raw-streams diagnostic (`XADD`, `XREADGROUP`, `XACK` + `XDEL` once per
//! fetch).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    payload, produce, wait_for, Admin, Batching, Kind, Load, Probe, Round, PRODUCERS, WARM,
    WARM_INDEX, WORKERS,
};

/// One list-queue worker: moves tasks into its processing list, runs
/// them, removes them from it.
fn list_worker(
    conn: &mut redis::Connection,
    queue: &str,
    processing: &str,
    fetch: usize,
    probe: &Probe,
) -> usize {
    let mut got: Vec<Vec<u8>> = Vec::with_capacity(fetch);
    if fetch > 1 {
        let mut pipe = redis::pipe();
        for _ in 0..fetch {
            pipe.cmd("LMOVE")
                .arg(queue)
                .arg(processing)
                .arg("RIGHT")
                .arg("LEFT");
        }
        let moved: Vec<Option<Vec<u8>>> = pipe.query(conn).expect("LMOVE");
        got.extend(moved.into_iter().flatten());
    }
    if got.is_empty() {
        let moved: Option<Vec<u8>> = redis::cmd("BLMOVE")
            .arg(queue)
            .arg(processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(0.1)
            .query(conn)
            .expect("BLMOVE");
        got.extend(moved);
    }
    if got.is_empty() {
        return 0;
    }
    for p in &got {
        probe.start(p);
    }
    let mut pipe = redis::pipe();
    for p in &got {
        pipe.cmd("LREM").arg(processing).arg(1).arg(p).ignore();
    }
    let () = pipe.query(conn).expect("LREM");
    got.len()
}

/// One raw-streams worker: `XREADGROUP` up to `fetch` entries, runs them,
/// then acknowledges and deletes them all in one round trip.
fn streams_worker(
    conn: &mut redis::Connection,
    stream: &str,
    consumer: &str,
    fetch: usize,
    probe: &Probe,
) -> usize {
    let v: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg(consumer)
        .arg("COUNT")
        .arg(fetch)
        .arg("BLOCK")
        .arg(100)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query(conn)
        .expect("XREADGROUP");
    // `[[stream, [[id, [field, value, ...]], ...]]]`, or nil.
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let items = |v: redis::Value| match v {
        redis::Value::Array(a) => a,
        _ => Vec::new(),
    };
    for stream in items(v) {
        for entry in items(stream).into_iter().skip(1).flat_map(items) {
            let mut parts = items(entry).into_iter();
            let (Some(redis::Value::BulkString(id)), Some(fields)) = (parts.next(), parts.next())
            else {
                continue;
            };
            if let Some(redis::Value::BulkString(p)) = items(fields).get(1) {
                probe.start(p);
            }
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return 0;
    }
    let () = redis::pipe()
        .cmd("XACK")
        .arg(stream)
        .arg("g")
        .arg(&ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(&ids)
        .ignore()
        .query(conn)
        .expect("XACK");
    ids.len()
}

/// Submits `tasks` in one round trip.
fn raw_submit(kind: Kind, conn: &mut redis::Connection, key: &str, tasks: &[String]) {
    if kind == Kind::List {
        let _: i64 = redis::cmd("LPUSH")
            .arg(key)
            .arg(tasks)
            .query(conn)
            .expect("LPUSH");
        return;
    }
    let mut pipe = redis::pipe();
    for t in tasks {
        pipe.cmd("XADD").arg(key).arg("*").arg("p").arg(t).ignore();
    }
    let () = pipe.query(conn).expect("XADD");
}

/// The list queue, or the raw-streams diagnostic: plain commands from
/// plain threads.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    kind: Kind,
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    probe: &Arc<Probe>,
    admin: &mut Admin,
) -> Round {
    let client = redis::Client::open(admin.url.as_str()).expect("url");
    let connect = || client.get_connection().expect("connect");
    let key = format!("r{id}:queue");
    if kind == Kind::Streams {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("g")
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut connect())
            .expect("XGROUP CREATE");
    }
    let completed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Stops the workers however the round ends (a panic included), so
        // that the scope can join them.
        let _stop = StopOnDrop(&stop);
        for w in 0..WORKERS {
            let mut conn = connect();
            let (key, completed, stop) = (&key, &completed, &stop);
            let own = format!("r{id}:processing:{w}");
            let probe = &**probe;
            s.spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let f = batching.fetch();
                    let done = if kind == Kind::List {
                        list_worker(&mut conn, key, &own, f, probe)
                    } else {
                        streams_worker(&mut conn, key, &own, f, probe)
                    };
                    completed.fetch_add(done as u64, Ordering::Release);
                }
            });
        }
        let submitters: Vec<_> = (0..PRODUCERS)
            .map(|_| {
                let mut conn = connect();
                let key = &key;
                move |tasks: Vec<String>| raw_submit(kind, &mut conn, key, &tasks)
            })
            .collect();
        let warm: Vec<String> = vec![payload(0, WARM_INDEX); WARM as usize];
        raw_submit(kind, &mut connect(), &key, &warm);
        let warmed = wait_for(WARM, Instant::now() + patience, || {
            completed.load(Ordering::Acquire)
        });
        assert!(
            warmed,
            "{}: the warm-up tasks did not complete",
            kind.name()
        );
        let cpu = admin.reset_stats();
        let start = Instant::now();
        produce(n, batching.submit(), load, probe, start, submitters);
        let done = wait_for(WARM + n, start + patience, || {
            completed.load(Ordering::Acquire)
        });
        let elapsed = start.elapsed();
        let server = admin.cost(cpu);
        Round {
            tasks: if done {
                n
            } else {
                completed.load(Ordering::Acquire).saturating_sub(WARM)
            },
            elapsed,
            latencies_ns: probe.latencies(),
            server,
            timed_out: !done,
        }
    })
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}
