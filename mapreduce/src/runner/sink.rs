//! Where reduced partitions go: in memory (then joined into one sorted
//! result) or to part files published atomically to a directory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::Runner;
use crate::counters::Counters;
use crate::error::{JobError, TaskError};
use crate::input::Feed;
use crate::job::Job;
use crate::merge::merge_sorted;
use crate::partition::Partitioner;

/// Where reduced partitions go.
pub(super) trait PartSink<K, O>: Sync {
    type Writer;
    type Done: Send;
    fn open(&self, partition: usize) -> Result<Self::Writer, TaskError>;
    fn write(&self, w: &mut Self::Writer, key: K, out: O) -> Result<(), TaskError>;
    fn close(&self, w: Self::Writer) -> Result<Self::Done, TaskError>;
    /// Whether `close` sorts the partition by key itself.
    fn sorts_by_key(&self) -> bool {
        false
    }
}

/// Collects a partition's outputs in memory, sorted by key when `sort`
/// (each reduce task sorts its own partition, so the sorting runs on
/// every thread; the partitions are merged at the end).
pub(super) struct MemSink {
    sort: bool,
}

impl<K: Send + Ord, O: Send> PartSink<K, O> for MemSink {
    type Writer = Vec<(K, O)>;
    type Done = Vec<(K, O)>;
    fn open(&self, _p: usize) -> Result<Self::Writer, TaskError> {
        Ok(Vec::new())
    }
    fn write(&self, w: &mut Self::Writer, key: K, out: O) -> Result<(), TaskError> {
        w.push((key, out));
        Ok(())
    }
    fn close(&self, mut w: Self::Writer) -> Result<Self::Done, TaskError> {
        if self.sort {
            // Keys are unique within a partition.
            w.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(w)
    }
    fn sorts_by_key(&self) -> bool {
        self.sort
    }
}

pub(super) struct DirSink<'f, F> {
    pub(super) dir: PathBuf,
    pub(super) format: &'f F,
}

/// The name of partition `p`'s output file.
pub(super) fn part_name(p: usize) -> String {
    format!("part-{p:05}")
}

impl<K, O, F> PartSink<K, O> for DirSink<'_, F>
where
    F: Fn(&K, &O, &mut dyn Write) -> io::Result<()> + Sync,
{
    type Writer = (BufWriter<File>, String);
    type Done = String;
    fn open(&self, p: usize) -> Result<Self::Writer, TaskError> {
        let name = part_name(p);
        let f = File::create(self.dir.join(&name))?;
        Ok((BufWriter::with_capacity(256 * 1024, f), name))
    }
    fn write(&self, w: &mut Self::Writer, key: K, out: O) -> Result<(), TaskError> {
        (self.format)(&key, &out, &mut w.0)?;
        Ok(())
    }
    fn close(&self, (w, name): Self::Writer) -> Result<String, TaskError> {
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        Ok(name)
    }
}

impl<P> Runner<P> {
    pub(super) fn to_dir<J, Fd, F>(
        &self,
        job: &J,
        feed: &Fd,
        dir: &Path,
        format: &F,
    ) -> Result<(Vec<PathBuf>, Counters), JobError>
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Sync,
    {
        let out_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JobError::Output { path, source }
        };
        if dir.symlink_metadata().is_ok() {
            return Err(JobError::OutputExists {
                path: dir.to_path_buf(),
            });
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempdir_in(&parent)
            .map_err(out_err(&parent))?;
        let sink = DirSink {
            dir: staging.path().to_path_buf(),
            format,
        };
        let (names, counters) = self.execute(job, feed, &sink)?;
        File::create(staging.path().join("_SUCCESS"))
            .and_then(|f| f.sync_all())
            .map_err(out_err(staging.path()))?;
        let staged = staging.keep();
        if let Err(source) = std::fs::rename(&staged, dir) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(JobError::Output {
                path: dir.to_path_buf(),
                source,
            });
        }
        if let Ok(d) = File::open(&parent) {
            let _ = d.sync_all();
        }
        Ok((names.into_iter().map(|n| dir.join(n)).collect(), counters))
    }

    /// The in-memory sink: it sorts each partition unless the partitioner
    /// already orders keys.
    pub(super) fn mem_sink<K>(&self) -> MemSink
    where
        P: Partitioner<K>,
    {
        MemSink {
            sort: !self.partitioner.is_ordered(),
        }
    }

    /// Joins the partitions, each sorted by key, into one sorted vector:
    /// concatenated when the partitioner is ordered, else merged.
    pub(super) fn join_sorted<J: Job>(
        &self,
        parts: Vec<Vec<(J::Key, J::Output)>>,
    ) -> Vec<(J::Key, J::Output)>
    where
        P: Partitioner<J::Key>,
    {
        if self.partitioner.is_ordered() {
            parts.into_iter().flatten().collect()
        } else {
            merge_sorted(parts)
        }
    }
}
