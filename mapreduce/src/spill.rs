//! Sorted runs on disk: the spill directory (removed when dropped), the run
//! writer, and the reader of one partition's segment of a run.
//!
//! A run file is private to the user who runs the job: the directory is
//! created 0700 and each run 0600 (unix), whatever the umask, since runs
//! hold the job's intermediate data.
//!
//! The reader trusts nothing in the file. What it checks a frame against
//! comes from the writer's record in memory (each segment's length and value
//! count), so a damaged or truncated file gives a typed error, never a
//! panic, a lost entry, or an allocation the segment cannot justify.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // `mkdir` with mode 0700: the umask can only take bits away.
            b.permissions(std::fs::Permissions::from_mode(0o700));
        }
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

    /// Starts a run whose entries belong to partitions below `partitions`.
    pub(crate) fn writer<K: Codec, V: Codec>(
        &self,
        partitions: usize,
    ) -> io::Result<RunWriter<'_, K, V>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("run-{id:08}"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Created 0600; the umask can only take bits away.
            options.mode(0o600);
        }
        let handle = options.open(&path)?;
        let file = SpillFile {
            path,
            bytes: 0,
            dir: self,
        };
        Ok(RunWriter {
            out: BufWriter::with_capacity(256 * 1024, handle),
            file: Some(file),
            partitions,
            segments: Vec::new(),
            pos: 0,
            scratch: Vec::new(),
            _types: PhantomData,
        })
    }

    /// Starts an append-only file of raw bytes (the frames a cluster
    /// worker receives beyond its memory share).
    #[cfg(feature = "timely")]
    pub(crate) fn raw(&self) -> io::Result<RawSpill<'_>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("recv-{id:08}"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let handle = options.open(&path)?;
        Ok(RawSpill {
            out: BufWriter::with_capacity(256 * 1024, handle),
            file: SpillFile {
                path,
                bytes: 0,
                dir: self,
            },
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

/// An append-only spill file of raw bytes; removed when dropped.
#[cfg(feature = "timely")]
pub(crate) struct RawSpill<'s> {
    out: BufWriter<File>,
    file: SpillFile<'s>,
}

#[cfg(feature = "timely")]
impl RawSpill<'_> {
    /// Appends `bytes`; returns their offset.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let n = bytes.len() as u64;
        self.file.dir.reserve(n)?;
        let offset = self.file.bytes;
        self.file.bytes += n;
        self.out.write_all(bytes)?;
        Ok(offset)
    }

    /// Flushes what was appended, so that it can be read.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The file's path, to read it back.
    pub(crate) fn path(&self) -> &Path {
        &self.file.path
    }
}

/// One partition's part of a run, as the writer recorded it (in memory:
/// the reader checks the file against it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    partition: usize,
    offset: u64,
    len: u64,
    /// Values in all of the segment's frames.
    values: u64,
}

/// Appends the frame of one entry to `out`: a little-endian `u32` length,
/// then the key, a varint value count and the values.
///
/// # Errors
///
/// When the key and values exceed 4 GiB encoded.
pub(crate) fn encode_frame<'v, K: Codec, V: Codec + 'v>(
    out: &mut Vec<u8>,
    key: &K,
    count: usize,
    values: impl Iterator<Item = &'v V>,
) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    key.encode(out);
    put_varint(out, count as u64);
    for v in values {
        v.encode(out);
    }
    let len = u32::try_from(out.len() - start - 4).map_err(|_| {
        out.truncate(start);
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "one key's values exceed 4 GiB in a spill record",
        )
    })?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Writes one run: the entries of its lowest partition sorted by key, then
/// those of the next, and so on. Each entry is one frame
/// ([`encode_frame`]). Only partitions that have entries get a segment, so
/// a run costs memory for what it holds, not for R.
pub(crate) struct RunWriter<'s, K, V> {
    out: BufWriter<File>,
    file: Option<SpillFile<'s>>,
    partitions: usize,
    segments: Vec<Segment>,
    pos: u64,
    scratch: Vec<u8>,
    _types: PhantomData<fn(&K, &V)>,
}

impl<'s, K: Codec, V: Codec> RunWriter<'s, K, V> {
    /// Appends an entry of `partition`; partitions must come in ascending
    /// order and keys in order inside a partition.
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
        debug_assert!(count > 0);
        self.scratch.clear();
        encode_frame(&mut self.scratch, key, count, values)?;
        let n = self.scratch.len() as u64;
        let file = self.file.as_mut().expect("file present until finish");
        file.dir.reserve(n)?;
        file.bytes += n;
        self.out.write_all(&self.scratch)?;
        match self.segments.last_mut() {
            Some(s) if s.partition == partition => {
                s.len += n;
                s.values += count as u64;
            }
            last => {
                debug_assert!(last.is_none_or(|s| s.partition < partition));
                self.segments.push(Segment {
                    partition,
                    offset: self.pos,
                    len: n,
                    values: count as u64,
                });
            }
        }
        self.pos += n;
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
    /// In ascending partition order.
    segments: Vec<Segment>,
}

impl DiskRun<'_> {
    fn find(&self, p: usize) -> Option<&Segment> {
        self.segments
            .binary_search_by_key(&p, |s| s.partition)
            .ok()
            .map(|i| &self.segments[i])
    }

    /// Whether partition `p` has entries in this run.
    pub(crate) fn has_segment(&self, p: usize) -> bool {
        self.find(p).is_some()
    }

    /// A reader of partition `p`'s entries, or `None` when it has none.
    pub(crate) fn segment<K: Codec, V: Codec>(
        &self,
        p: usize,
    ) -> Result<Option<SegmentReader<K, V>>, TaskError> {
        let Some(seg) = self.find(p) else {
            return Ok(None);
        };
        let mut f = File::open(&self.file.path)?;
        f.seek(SeekFrom::Start(seg.offset))?;
        Ok(Some(SegmentReader::new(
            BufReader::with_capacity(64 * 1024, f),
            seg.len,
            seg.values,
        )))
    }
}

/// Bytes of a frame read ahead at a time: a frame that fits is read whole;
/// a larger one (a hot key's values) is read in windows, so that merging it
/// holds a window, not the frame.
const WINDOW: usize = 64 * 1024;

/// Streams the entries of one partition of one run, checking each frame
/// against what the writer recorded for the segment.
///
/// A frame is read through a window: [`SegmentReader::next_key`] decodes
/// its key and value count, then [`SegmentReader::next_value`] its values
/// one at a time, reading more of the frame when the window runs dry. A
/// value that does not decode from what the window holds is retried once
/// more of the frame is read; only when the whole frame is read does a
/// failure mean a damaged run (a proper prefix of an encoding never
/// decodes, the encodings being self-delimiting).
pub(crate) struct SegmentReader<K, V, R = BufReader<File>> {
    input: R,
    /// Bytes of the segment not read into the window yet.
    bytes_left: u64,
    /// Values of the segment whose frames have not been started.
    values_left: u64,
    /// The window: `scratch[pos..]` is read but not yet decoded.
    scratch: Vec<u8>,
    pos: usize,
    /// Bytes of the current frame not read into the window yet.
    frame_left: u64,
    /// Values of the current frame not decoded yet.
    frame_values: u64,
    _types: PhantomData<fn() -> (K, V)>,
}

fn corrupt(what: impl std::fmt::Display) -> TaskError {
    TaskError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt spill run: {what}"),
    ))
}

/// `read_exact`, with a file that ends early reported as a damaged run.
fn read_all(input: &mut impl Read, buf: &mut [u8]) -> Result<(), TaskError> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt("the file is shorter than the run written to it")
        } else {
            e.into()
        }
    })
}

impl<K: Codec, V: Codec, R: Read> SegmentReader<K, V, R> {
    /// A reader of a segment of `len` bytes holding `values` values,
    /// starting at the current position of `input`.
    pub(crate) fn new(input: R, len: u64, values: u64) -> Self {
        Self {
            input,
            bytes_left: len,
            values_left: values,
            scratch: Vec::new(),
            pos: 0,
            frame_left: 0,
            frame_values: 0,
            _types: PhantomData,
        }
    }

    /// Reads up to `want` more bytes of the current frame into the window
    /// (dropping what was decoded); grows with the bytes actually read,
    /// not with what a length claims.
    fn refill(&mut self, want: u64) -> Result<(), TaskError> {
        if self.pos > 0 {
            self.scratch.drain(..self.pos);
            self.pos = 0;
        }
        let n = want.min(self.frame_left);
        let before = self.scratch.len();
        (&mut self.input).take(n).read_to_end(&mut self.scratch)?;
        if (self.scratch.len() - before) as u64 != n {
            return Err(corrupt("the file is shorter than the run written to it"));
        }
        self.frame_left -= n;
        Ok(())
    }

    /// Decodes one item of the current frame from the window, reading
    /// more of the frame (twice what the window holds, at least
    /// [`WINDOW`]) while it does not decode and the frame has more.
    fn decode_item<T>(
        &mut self,
        decode: impl Fn(&mut &[u8]) -> Result<T, crate::error::DecodeError>,
    ) -> Result<T, TaskError> {
        loop {
            let mut input = &self.scratch[self.pos..];
            let before = input.len();
            match decode(&mut input) {
                Ok(v) => {
                    self.pos += before - input.len();
                    return Ok(v);
                }
                Err(e) if self.frame_left == 0 => return Err(corrupt(e)),
                Err(_) => {
                    let unread = (self.scratch.len() - self.pos) as u64;
                    self.refill(unread.saturating_mul(2).max(WINDOW as u64))?;
                }
            }
        }
    }

    /// Starts the next frame: its key and value count, or `None` at the end
    /// of the segment. Its values follow from [`SegmentReader::next_value`]
    /// (any left unread are skipped by the next call).
    ///
    /// A frame may claim no more bytes than the segment has left (so the
    /// window never outgrows the segment) and no more values than the
    /// segment has left (so values that encode to zero bytes, such as `()`,
    /// are bounded by what was written, not by a count in the file).
    pub(crate) fn next_key(&mut self) -> Result<Option<(K, u64)>, TaskError> {
        while self.next_value()?.is_some() {}
        if self.bytes_left == 0 {
            if self.values_left != 0 {
                return Err(corrupt("the segment ends before its last values"));
            }
            return Ok(None);
        }
        if self.bytes_left < 4 {
            return Err(corrupt("a frame header runs past the segment"));
        }
        let mut len = [0u8; 4];
        read_all(&mut self.input, &mut len)?;
        let len = u64::from(u32::from_le_bytes(len));
        if len > self.bytes_left - 4 {
            return Err(corrupt("a frame runs past the segment"));
        }
        self.bytes_left -= 4 + len;
        self.scratch.clear();
        self.pos = 0;
        self.frame_left = len;
        self.refill(WINDOW as u64)?;
        let key = self.decode_item(K::decode)?;
        let n = self.decode_item(get_varint)?;
        if n == 0 || n > self.values_left {
            return Err(corrupt("bad value count"));
        }
        self.values_left -= n;
        self.frame_values = n;
        Ok(Some((key, n)))
    }

    /// The next value of the current frame, or `None` once its values are
    /// all read (then the frame must have no bytes left).
    pub(crate) fn next_value(&mut self) -> Result<Option<V>, TaskError> {
        if self.frame_values == 0 {
            if self.pos != self.scratch.len() || self.frame_left != 0 {
                // Checked once: the next frame starts clean.
                self.scratch.clear();
                self.pos = 0;
                return Err(corrupt("trailing bytes in a record"));
            }
            return Ok(None);
        }
        let v = self.decode_item(V::decode)?;
        self.frame_values -= 1;
        Ok(Some(v))
    }

    /// The next key with its first value and any further values, or `None`
    /// at the end of the segment (a whole frame at once; see
    /// [`SegmentReader::next_key`] for the checks).
    #[cfg(any(feature = "timely", feature = "fuzzing"))]
    #[allow(clippy::type_complexity)]
    pub(crate) fn next_entry(&mut self) -> Result<Option<(K, V, Vec<V>)>, TaskError> {
        let Some((key, n)) = self.next_key()? else {
            return Ok(None);
        };
        let first = self
            .next_value()?
            .ok_or_else(|| corrupt("bad value count"))?;
        // `n - 1 <= values_left`, a count the writer really wrote; the
        // reservation is also capped by the bytes in the window, which is
        // exact for values of one byte or more and harmless for zero-byte
        // ones.
        let more = usize::try_from(n - 1).unwrap_or(usize::MAX);
        let mut rest = Vec::with_capacity(more.min(self.scratch.len() - self.pos));
        while let Some(v) = self.next_value()? {
            rest.push(v);
        }
        Ok(Some((key, first, rest)))
    }
}
