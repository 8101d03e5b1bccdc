//! Sorted runs on disk: the spill directory (removed when dropped), the run
//! writer, and the reader of one partition's segment of a run.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Take, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use crate::codec::{get_varint, put_varint, Codec};
use crate::error::{JobError, TaskError};
use crate::sync::{AtomicU64, Ordering};

/// The job's temporary directory for spill runs. Dropping it (on success,
/// error or unwinding) removes the directory and everything in it.
#[derive(Debug)]
pub(crate) struct SpillDir {
    dir: tempfile::TempDir,
    quota: u64,
    used: AtomicU64,
    total: AtomicU64,
    next_id: AtomicU64,
}

impl SpillDir {
    pub(crate) fn new(parent: Option<&Path>, quota: u64) -> Result<Self, JobError> {
        let mut b = tempfile::Builder::new();
        b.prefix("mapreduce-spill-");
        let dir = match parent {
            Some(p) => b.tempdir_in(p),
            None => b.tempdir(),
        }
        .map_err(|source| JobError::Spill { source })?;
        Ok(Self {
            dir,
            quota,
            used: AtomicU64::new(0),
            total: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        })
    }

    /// Bytes ever written to spill runs in this job.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Starts a run with `partitions` segments.
    pub(crate) fn writer<K: Codec, V: Codec>(
        &self,
        partitions: usize,
    ) -> io::Result<RunWriter<'_, K, V>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("run-{id:08}"));
        let handle = File::create(&path)?;
        let file = SpillFile {
            path,
            bytes: 0,
            dir: self,
        };
        Ok(RunWriter {
            out: BufWriter::with_capacity(256 * 1024, handle),
            file: Some(file),
            partitions,
            segments: vec![(0, 0); partitions],
            pos: 0,
            current: None,
            scratch: Vec::new(),
            _types: PhantomData,
        })
    }

    /// Counts `n` more bytes against the quota.
    fn reserve(&self, n: u64) -> io::Result<()> {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.quota {
            self.used.fetch_sub(n, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "spill space exhausted (the runner's spill quota)",
            ));
        }
        self.total.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

/// A spill file; dropping it removes the file and returns its bytes to the
/// quota.
#[derive(Debug)]
pub(crate) struct SpillFile<'s> {
    path: PathBuf,
    bytes: u64,
    dir: &'s SpillDir,
}

impl Drop for SpillFile<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.dir.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Writes one run: the entries of partition 0 sorted by key, then those of
/// partition 1, and so on. Each entry is a frame: a little-endian `u32`
/// length, then the key, a varint value count and the values.
pub(crate) struct RunWriter<'s, K, V> {
    out: BufWriter<File>,
    file: Option<SpillFile<'s>>,
    partitions: usize,
    segments: Vec<(u64, u64)>,
    pos: u64,
    current: Option<usize>,
    scratch: Vec<u8>,
    _types: PhantomData<fn(&K, &V)>,
}

impl<'s, K: Codec, V: Codec> RunWriter<'s, K, V> {
    /// Appends an entry of `partition`; partitions must come in order and
    /// keys in order inside a partition.
    pub(crate) fn write<'v>(
        &mut self,
        partition: usize,
        key: &K,
        count: usize,
        values: impl Iterator<Item = &'v V>,
    ) -> io::Result<()>
    where
        V: 'v,
    {
        debug_assert!(partition < self.partitions);
        if self.current != Some(partition) {
            self.segments[partition].0 = self.pos;
            self.current = Some(partition);
        }
        self.scratch.clear();
        key.encode(&mut self.scratch);
        put_varint(&mut self.scratch, count as u64);
        for v in values {
            v.encode(&mut self.scratch);
        }
        let len = u32::try_from(self.scratch.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "one key's values exceed 4 GiB in a spill record",
            )
        })?;
        let n = 4 + u64::from(len);
        let file = self.file.as_mut().expect("file present until finish");
        file.dir.reserve(n)?;
        file.bytes += n;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&self.scratch)?;
        self.pos += n;
        self.segments[partition].1 += n;
        Ok(())
    }

    /// Flushes the run and returns its handle.
    pub(crate) fn finish(mut self) -> io::Result<DiskRun<'s>> {
        self.out.flush()?;
        Ok(DiskRun {
            file: self.file.take().expect("file present until finish"),
            segments: std::mem::take(&mut self.segments),
        })
    }
}

/// A finished run on disk.
#[derive(Debug)]
pub(crate) struct DiskRun<'s> {
    file: SpillFile<'s>,
    segments: Vec<(u64, u64)>,
}

impl DiskRun<'_> {
    /// Whether partition `p` has entries in this run.
    pub(crate) fn has_segment(&self, p: usize) -> bool {
        self.segments[p].1 > 0
    }

    /// A reader of partition `p`'s entries, or `None` when it has none.
    pub(crate) fn segment<K: Codec, V: Codec>(
        &self,
        p: usize,
    ) -> Result<Option<SegmentReader<K, V>>, TaskError> {
        let (offset, len) = self.segments[p];
        if len == 0 {
            return Ok(None);
        }
        let mut f = File::open(&self.file.path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Some(SegmentReader {
            input: BufReader::with_capacity(64 * 1024, f.take(len)),
            scratch: Vec::new(),
            _types: PhantomData,
        }))
    }
}

/// Streams the entries of one partition of one run.
pub(crate) struct SegmentReader<K, V> {
    input: BufReader<Take<File>>,
    scratch: Vec<u8>,
    _types: PhantomData<fn() -> (K, V)>,
}

fn corrupt(what: impl std::fmt::Display) -> TaskError {
    TaskError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt spill run: {what}"),
    ))
}

impl<K: Codec, V: Codec> SegmentReader<K, V> {
    /// The next entry, or `None` at the end of the segment.
    /// The next key with its first value and any further values.
    #[allow(clippy::type_complexity)]
    pub(crate) fn next_entry(&mut self) -> Result<Option<(K, V, Vec<V>)>, TaskError> {
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        self.scratch.resize(len, 0);
        self.input.read_exact(&mut self.scratch)?;
        let mut input = &self.scratch[..];
        let key = K::decode(&mut input).map_err(corrupt)?;
        let n = get_varint(&mut input).map_err(corrupt)?;
        if n == 0 || n > input.len() as u64 + 1 {
            return Err(corrupt("bad value count"));
        }
        let first = V::decode(&mut input).map_err(corrupt)?;
        let mut rest = Vec::with_capacity(n as usize - 1);
        for _ in 1..n {
            rest.push(V::decode(&mut input).map_err(corrupt)?);
        }
        if !input.is_empty() {
            return Err(corrupt("trailing bytes in a record"));
        }
        Ok(Some((key, first, rest)))
    }
}
