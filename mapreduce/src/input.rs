//! Inputs: text files split on line boundaries, and record iterators.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::board::TaskBoard;
use crate::compress::{decoder, Compression, Counting, FileCodec};
use crate::error::{JobError, TaskError};
use crate::job::Origin;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// Text files as input: each line is one record (the bytes before its
/// `'\n'`; a `'\r'` before it is kept; a last line without `'\n'` is a line
/// too). Lines are bytes: invalid UTF-8 is passed through unchanged, for the
/// job to decode as it sees fit.
///
/// A directory stands for all regular files under it, recursively, in
/// path order. Each file is cut into splits of about the runner's split
/// size, on line boundaries; one map task maps one split.
///
/// Compressed files (gzip with feature `gzip`, zstd with feature `zstd`)
/// are recognised by extension, `.gz` and `.zst`, or by
/// [`TextInput::compression`]; each is one split, decompressed as it is
/// read.
#[derive(Debug, Clone)]
pub struct TextInput {
    paths: Vec<PathBuf>,
    compression: Compression,
}

impl TextInput {
    /// The given files and directories.
    pub fn new<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
            compression: Compression::Auto,
        }
    }

    /// One file or directory.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self {
            paths: vec![path.into()],
            compression: Compression::Auto,
        }
    }

    /// How the files are compressed. Default [`Compression::Auto`]: by
    /// extension, for the formats whose feature is on.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The files this input stands for, directories expanded, in order.
    ///
    /// # Errors
    ///
    /// [`JobError::Input`] for a path that is missing or cannot be read.
    pub fn files(&self) -> Result<Vec<PathBuf>, JobError> {
        let mut files = Vec::new();
        for p in &self.paths {
            expand(p, &mut files)?;
        }
        Ok(files)
    }
}

fn input_err(path: &Path) -> impl FnOnce(io::Error) -> JobError + '_ {
    move |source| JobError::Input {
        path: path.to_path_buf(),
        source,
    }
}

fn expand(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), JobError> {
    let meta = fs::metadata(path).map_err(input_err(path))?;
    if meta.is_dir() {
        let mut children = Vec::new();
        for entry in fs::read_dir(path).map_err(input_err(path))? {
            children.push(entry.map_err(input_err(path))?.path());
        }
        children.sort();
        for c in children {
            expand(&c, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// One split: the whole lines of `file` in `start..end`.
#[derive(Debug, Clone)]
pub(crate) struct TextSplit {
    file: usize,
    start: u64,
    end: u64,
}

/// The planned splits of a [`TextInput`].
pub(crate) struct TextFeed {
    files: Vec<PathBuf>,
    codecs: Vec<FileCodec>,
    splits: Vec<TextSplit>,
    total: u64,
}

/// The index just past the first `'\n'` at or after `from`, or `len`.
fn line_end_after(f: &mut File, from: u64, len: u64) -> io::Result<u64> {
    f.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = from;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(len);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
}

impl TextFeed {
    /// Cuts the input into splits of at most `split_size` bytes, and of
    /// about `total / (2 * threads)` bytes (but at least 1 MiB) when that is
    /// smaller, so that every thread has work and a slow thread can be
    /// balanced by the others.
    pub(crate) fn plan(
        input: &TextInput,
        split_size: u64,
        threads: usize,
    ) -> Result<Self, JobError> {
        let files = input.files()?;
        let mut lens = Vec::with_capacity(files.len());
        let mut codecs = Vec::with_capacity(files.len());
        let mut total = 0u64;
        for path in &files {
            codecs.push(input.compression.for_file(path).map_err(input_err(path))?);
            let len = fs::metadata(path).map_err(input_err(path))?.len();
            total = total.saturating_add(len);
            lens.push(len);
        }
        let per_thread = total
            .div_ceil((threads as u64).saturating_mul(2).max(1))
            .max(1 << 20);
        let split_size = split_size.min(per_thread);
        let mut splits = Vec::new();
        for (i, (path, &len)) in files.iter().zip(&lens).enumerate() {
            // Opened here, one file at a time: also checks it is readable.
            let mut f = File::open(path).map_err(input_err(path))?;
            if codecs[i] != FileCodec::Plain {
                // Not splittable: one split, read from the start.
                if len > 0 {
                    splits.push(TextSplit {
                        file: i,
                        start: 0,
                        end: len,
                    });
                }
                continue;
            }
            let mut start = 0;
            while start < len {
                let target = start.saturating_add(split_size);
                let end = if target >= len {
                    len
                } else {
                    line_end_after(&mut f, target - 1, len).map_err(input_err(path))?
                };
                splits.push(TextSplit {
                    file: i,
                    start,
                    end,
                });
                start = end;
            }
        }
        Ok(Self {
            files,
            codecs,
            splits,
            total,
        })
    }
}

impl TextFeed {
    /// Split `i`, in split order.
    #[cfg(feature = "timely")]
    pub(crate) fn split(&self, i: usize) -> TextSplit {
        self.splits[i].clone()
    }

    /// The number of splits.
    #[cfg(feature = "timely")]
    pub(crate) fn len(&self) -> usize {
        self.splits.len()
    }

    /// Total input bytes.
    #[cfg(feature = "timely")]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

/// How the runner pulls splits and their records.
pub(crate) trait Feed<R: ?Sized>: Sync {
    type Split: Send;

    /// Claims the next split and its index (split order).
    fn next_split(&self, board: &TaskBoard) -> Option<(usize, Self::Split)>;

    /// The number of splits, when known in advance.
    fn splits(&self) -> Option<usize>;

    /// Total input bytes, when known.
    fn total_bytes(&self) -> Option<u64>;

    /// The split's name in errors.
    fn name(&self, split: &Self::Split) -> String;

    /// Calls `f` on each record of the split, stopping at the first error
    /// or when the board is cancelled. Adds to the progress counters.
    fn for_each<F>(
        &self,
        split: &Self::Split,
        board: &TaskBoard,
        bytes: &AtomicU64,
        records: &AtomicU64,
        f: F,
    ) -> Result<(), TaskError>
    where
        F: FnMut(&R, Origin<'_>) -> Result<(), TaskError>;
}

/// Reads this many bytes of a split at a time.
const CHUNK: usize = 1 << 20;

impl Feed<[u8]> for TextFeed {
    type Split = TextSplit;

    fn next_split(&self, board: &TaskBoard) -> Option<(usize, TextSplit)> {
        board.claim().map(|i| (i, self.splits[i].clone()))
    }

    fn splits(&self) -> Option<usize> {
        Some(self.splits.len())
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.total)
    }

    fn name(&self, s: &TextSplit) -> String {
        format!("{}:{}-{}", self.files[s.file].display(), s.start, s.end)
    }

    fn for_each<F>(
        &self,
        s: &TextSplit,
        board: &TaskBoard,
        bytes: &AtomicU64,
        records: &AtomicU64,
        f: F,
    ) -> Result<(), TaskError>
    where
        F: FnMut(&[u8], Origin<'_>) -> Result<(), TaskError>,
    {
        let path = &self.files[s.file];
        let mut file = File::open(path)?;
        if self.codecs[s.file] == FileCodec::Plain {
            file.seek(SeekFrom::Start(s.start))?;
            let lines = Lines {
                path,
                file_index: s.file,
                base: s.start,
                remaining: Some(s.end - s.start),
            };
            return lines.for_each(file, board, Some(bytes), records, f);
        }
        // Progress counts the compressed bytes (the total is theirs).
        let counted = Counting { inner: file, bytes };
        let lines = Lines {
            path,
            file_index: s.file,
            base: 0,
            remaining: None,
        };
        let input = decoder(self.codecs[s.file], counted)?;
        lines.for_each(input, board, None, records, f)
    }
}

/// The lines of a split: `remaining` bytes of a plain file from offset
/// `base`, or all of a decompressed stream (`None`; offsets are then in
/// the decompressed text).
struct Lines<'p> {
    path: &'p Path,
    file_index: usize,
    base: u64,
    remaining: Option<u64>,
}

impl Lines<'_> {
    /// Calls `f` on each line read from `input`, stopping at the first
    /// error or when the board is cancelled; adds what it reads to `bytes`
    /// when given, and the lines to `records`.
    fn for_each<F>(
        self,
        mut input: impl Read,
        board: &TaskBoard,
        bytes: Option<&AtomicU64>,
        records: &AtomicU64,
        mut f: F,
    ) -> Result<(), TaskError>
    where
        F: FnMut(&[u8], Origin<'_>) -> Result<(), TaskError>,
    {
        let Self {
            path,
            file_index,
            mut base,
            remaining,
        } = self;
        let bounded = remaining.is_some();
        let mut remaining = remaining.unwrap_or(u64::MAX);
        let mut buf = vec![
            0u8;
            CHUNK
                .min(usize::try_from(remaining).unwrap_or(CHUNK))
                .max(1)
        ];
        // `buf[..filled]` holds unread bytes starting at offset `base`.
        let mut filled = 0usize;
        loop {
            if board.is_cancelled() {
                return Err(TaskError::Cancelled);
            }
            if filled == buf.len() {
                // A line longer than the buffer: grow it.
                buf.resize(buf.len() * 2, 0);
            }
            let want = (buf.len() - filled).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = if want == 0 {
                0
            } else {
                input.read(&mut buf[filled..filled + want])?
            };
            if n == 0 && remaining > 0 && bounded {
                return Err(TaskError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "input file shrank while being read",
                )));
            }
            if n == 0 {
                // The end of a decompressed stream.
                remaining = 0;
            } else if bounded {
                remaining -= n as u64;
            }
            if let Some(b) = bytes {
                b.fetch_add(n as u64, Ordering::Relaxed);
            }
            filled += n;
            let mut line_start = 0usize;
            let mut lines = 0u64;
            for nl in memchr::memchr_iter(b'\n', &buf[..filled]) {
                let origin = Origin {
                    file: Some(path),
                    file_index,
                    offset: base + line_start as u64,
                };
                f(&buf[line_start..nl], origin)?;
                lines += 1;
                line_start = nl + 1;
            }
            if remaining == 0 {
                if line_start < filled {
                    let origin = Origin {
                        file: Some(path),
                        file_index,
                        offset: base + line_start as u64,
                    };
                    f(&buf[line_start..filled], origin)?;
                    lines += 1;
                }
                records.fetch_add(lines, Ordering::Relaxed);
                return Ok(());
            }
            records.fetch_add(lines, Ordering::Relaxed);
            buf.copy_within(line_start..filled, 0);
            filled -= line_start;
            base += line_start as u64;
        }
    }
}

/// A record iterator, pulled in chunks of `per_split` under a lock.
pub(crate) struct IterFeed<I: Iterator> {
    inner: Mutex<(I, usize, u64)>,
    per_split: usize,
}

impl<I: Iterator> IterFeed<I> {
    pub(crate) fn new(iter: I, per_split: usize) -> Self {
        Self {
            inner: Mutex::new((iter, 0, 0)),
            per_split,
        }
    }
}

impl<I> Feed<I::Item> for IterFeed<I>
where
    I: Iterator + Send,
    I::Item: Send,
{
    type Split = (u64, Vec<I::Item>);

    fn next_split(&self, board: &TaskBoard) -> Option<(usize, Self::Split)> {
        if board.is_cancelled() {
            return None;
        }
        let mut g = self.inner.lock();
        let (iter, next, first) = &mut *g;
        // Pushed one by one: `collect` would reserve what the iterator's
        // size hint claims, up to `per_split`, before any record arrives.
        let mut chunk = Vec::new();
        for r in iter.by_ref().take(self.per_split) {
            chunk.push(r);
        }
        if chunk.is_empty() {
            return None;
        }
        let idx = *next;
        let start = *first;
        *next += 1;
        *first += chunk.len() as u64;
        Some((idx, (start, chunk)))
    }

    fn splits(&self) -> Option<usize> {
        None
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }

    fn name(&self, (start, chunk): &Self::Split) -> String {
        format!("records {}..{}", start, start + chunk.len() as u64)
    }

    fn for_each<F>(
        &self,
        (start, chunk): &Self::Split,
        board: &TaskBoard,
        _bytes: &AtomicU64,
        records: &AtomicU64,
        mut f: F,
    ) -> Result<(), TaskError>
    where
        F: FnMut(&I::Item, Origin<'_>) -> Result<(), TaskError>,
    {
        for (i, r) in chunk.iter().enumerate() {
            if i % 1024 == 0 && board.is_cancelled() {
                return Err(TaskError::Cancelled);
            }
            f(
                r,
                Origin {
                    file: None,
                    file_index: 0,
                    offset: start + i as u64,
                },
            )?;
        }
        records.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
