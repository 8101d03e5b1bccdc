//! The playbook's story: users upload videos, the uploads go to a task
//! queue (durable, so closing the browser or a crash loses nothing),
//! a pool of workers transcodes them asynchronously, and a notifier tells
//! each user when their video is ready. When the queue is full, the upload
//! endpoint answers "503, retry later" instead of queueing without bound.
//!
//! Run: `cargo run -p sysblocks-task-queue --example video_pipeline`

use std::time::Duration;

use sysblocks_task_queue::{
    Backoff, BoundedQueue, Delivery, Priority, RedbStore, SubmitError, Task, TaskError, TaskQueue,
    WorkerPool,
};

/// What the web tier answers an upload.
#[derive(Debug)]
enum UploadResponse {
    /// 202 Accepted: the video is queued; the user may close the browser.
    Accepted { job: u64 },
    /// 503 Service Unavailable with Retry-After: back pressure.
    RetryLater { after_secs: u32 },
}

impl std::fmt::Display for UploadResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Accepted { job } => write!(f, "202 Accepted, job {job}"),
            Self::RetryLater { after_secs } => {
                write!(f, "503 Service Unavailable, Retry-After: {after_secs}")
            }
        }
    }
}

fn upload(jobs: &TaskQueue, user: &str, video: &str, premium: bool) -> UploadResponse {
    let priority = if premium {
        Priority::High
    } else {
        Priority::Normal
    };
    let task = Task::new(format!("{user}:{video}")).with_priority(priority);
    match jobs.submit(task) {
        Ok(id) => UploadResponse::Accepted { job: id.0 },
        Err(SubmitError::Full(_)) => UploadResponse::RetryLater { after_secs: 2 },
        Err(e) => panic!("storage failure: {e}"),
    }
}

fn main() {
    // A scratch directory, removed when `dir` drops (after the queue).
    let dir = tempfile::Builder::new()
        .prefix("video-pipeline-")
        .tempdir()
        .expect("temp dir");
    let store = RedbStore::open(dir.path().join("jobs.redb")).expect("job store");
    let jobs = TaskQueue::builder()
        .store(store)
        .capacity(8)
        .max_attempts(3)
        .lease(Duration::from_secs(30))
        .backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_secs(1)).unwrap())
        .build()
        .expect("queue");

    // Notifications flow through a bounded queue to one notifier thread.
    let notifications = BoundedQueue::<String>::new(64).expect("capacity");
    let inbox = notifications.clone();
    let notifier = std::thread::spawn(move || {
        while let Some(message) = inbox.pop() {
            println!("  notify: {message}");
        }
    });

    let outbox = notifications.clone();
    let pool = WorkerPool::start(&jobs, 3, move |d: &Delivery| -> Result<(), TaskError> {
        let job = String::from_utf8_lossy(d.payload()).into_owned();
        let (user, video) = job.split_once(':').unwrap_or(("?", &job));
        // A flaky transcoder: corrupt uploads fail their first attempt.
        if video.contains("glitchy") && d.attempt() == 1 {
            return Err(TaskError::new("ffmpeg: invalid data found"));
        }
        std::thread::sleep(Duration::from_millis(30)); // transcoding
        outbox
            .push(format!(
                "{user}, your video {video} is ready (attempt {})",
                d.attempt()
            ))
            .map_err(|_| TaskError::new("notifier gone"))?;
        Ok(())
    })
    .expect("workers");

    // A burst of uploads: more than the queue holds at once.
    let uploads = [
        ("ana", "cat.mp4", false),
        ("bo", "talk.mov", true),
        ("cy", "glitchy.avi", false),
        ("di", "ski.mp4", false),
        ("ed", "demo.mkv", false),
        ("fay", "party.mp4", false),
        ("gus", "lecture.mp4", true),
        ("hal", "trailer.mov", false),
        ("ivy", "drone.mp4", false),
        ("jo", "recital.mp4", false),
        ("kai", "vlog.mp4", false),
        ("lu", "match.mp4", false),
    ];
    let mut retry = Vec::new();
    for (user, video, premium) in uploads {
        let response = upload(&jobs, user, video, premium);
        println!("upload {user}/{video}: {response}");
        if let UploadResponse::RetryLater { .. } = response {
            retry.push((user, video, premium));
        }
    }
    // Clients told to retry come back later and get in.
    while !retry.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        retry.retain(|&(user, video, premium)| {
            let response = upload(&jobs, user, video, premium);
            println!("retry  {user}/{video}: {response}");
            matches!(response, UploadResponse::RetryLater { .. })
        });
    }

    while !jobs.is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = pool.shutdown(Duration::from_secs(5));
    notifications.close();
    notifier.join().expect("notifier");
    println!("stats: {:?}", jobs.stats());
    println!("shutdown: {report:?}");
    drop(jobs);
    drop(dir);
}
