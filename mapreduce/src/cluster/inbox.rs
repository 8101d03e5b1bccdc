//! What a cluster worker receives: the messages of the exchange, and the
//! inbox that keeps the frames of the partitions it reduces, in memory up
//! to its share of the budget and in a spill file beyond it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::codec::Codec;
use crate::spill::{RawSpill, SegmentReader, SpillDir};

/// One message of the exchange, routed to worker `dest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Msg {
    /// Frames (as in spill runs: key, value count, values) of one sorted
    /// source of one map task, for one partition; `seq` orders a source's
    /// batches.
    Frames {
        dest: u32,
        partition: u32,
        split: u64,
        source: u32,
        seq: u32,
        values: u64,
        bytes: Vec<u8>,
    },
    /// A worker's state at the end of a stage (0: map and exchange, 1:
    /// reduce), sent to every worker.
    Status(Status),
}

impl Msg {
    /// The worker the message goes to.
    pub(crate) fn dest(&self) -> u64 {
        match self {
            Self::Frames { dest, .. } => u64::from(*dest),
            Self::Status(s) => u64::from(s.dest),
        }
    }
}

/// A worker's state at the end of a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Status {
    pub(crate) dest: u32,
    pub(crate) from: u32,
    pub(crate) stage: u8,
    /// The worker's view of the input (split count, total bytes), so that
    /// processes that see different files are caught.
    pub(crate) plan: Option<(u64, u64)>,
    /// The worker's error, if its part failed.
    pub(crate) error: Option<String>,
    /// The worker's counters, by name.
    pub(crate) counters: Vec<(String, u64)>,
}

/// Where a batch of received frames is kept.
enum Piece {
    Mem(Vec<u8>),
    Disk { offset: u64, len: u64 },
}

/// One sorted source of one map task for one partition.
#[derive(Default)]
struct Stream {
    pieces: Vec<(u32, Piece)>,
    len: u64,
    values: u64,
}

/// The frames a worker received, by (partition, split, source): the
/// sources of a partition come out in split order, as the single-process
/// runner merges them.
pub(crate) struct Inbox<'s> {
    spill: &'s SpillDir,
    raw: Option<RawSpill<'s>>,
    mem: usize,
    mem_limit: usize,
    streams: BTreeMap<(u32, u64, u32), Stream>,
}

impl<'s> Inbox<'s> {
    /// An inbox that keeps up to `mem_limit` bytes in memory.
    pub(crate) fn new(spill: &'s SpillDir, mem_limit: usize) -> Self {
        Self {
            spill,
            raw: None,
            mem: 0,
            mem_limit,
            streams: BTreeMap::new(),
        }
    }

    /// Keeps one batch of frames.
    pub(crate) fn push(
        &mut self,
        partition: u32,
        split: u64,
        source: u32,
        seq: u32,
        values: u64,
        bytes: Vec<u8>,
    ) -> io::Result<()> {
        let len = bytes.len() as u64;
        let piece = if self.mem + bytes.len() <= self.mem_limit {
            self.mem += bytes.len();
            Piece::Mem(bytes)
        } else {
            let raw = match &mut self.raw {
                Some(r) => r,
                None => self.raw.insert(self.spill.raw()?),
            };
            let offset = raw.append(&bytes)?;
            Piece::Disk { offset, len }
        };
        let s = self.streams.entry((partition, split, source)).or_default();
        s.pieces.push((seq, piece));
        s.len += len;
        s.values += values;
        Ok(())
    }

    /// Flushes the spill file; call once everything is received.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        for s in self.streams.values_mut() {
            s.pieces.sort_unstable_by_key(|(seq, _)| *seq);
        }
        match &mut self.raw {
            Some(r) => r.flush(),
            None => Ok(()),
        }
    }

    /// Partition `p`'s sources, in split order.
    pub(crate) fn sources<K: Codec, V: Codec>(
        &self,
        p: u32,
    ) -> Vec<SegmentReader<K, V, Pieces<'_>>> {
        let path = self.raw.as_ref().map(RawSpill::path);
        self.streams
            .range((p, 0, 0)..=(p, u64::MAX, u32::MAX))
            .map(|(_, s)| {
                let pieces = Pieces {
                    path,
                    rest: s.pieces.iter(),
                    cur: Cur::Empty,
                };
                SegmentReader::new(pieces, s.len, s.values)
            })
            .collect()
    }
}

enum Cur<'a> {
    Empty,
    Mem(&'a [u8]),
    Disk(io::Take<BufReader<File>>),
}

/// Reads a source's batches one after the other.
pub(crate) struct Pieces<'a> {
    path: Option<&'a Path>,
    rest: std::slice::Iter<'a, (u32, Piece)>,
    cur: Cur<'a>,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = match &mut self.cur {
                Cur::Empty => 0,
                Cur::Mem(s) => s.read(buf)?,
                Cur::Disk(r) => r.read(buf)?,
            };
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.cur = match self.rest.next() {
                None => return Ok(0),
                Some((_, Piece::Mem(b))) => Cur::Mem(b),
                Some((_, Piece::Disk { offset, len })) => {
                    let path = self.path.ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, "received frames file missing")
                    })?;
                    let mut f = File::open(path)?;
                    f.seek(SeekFrom::Start(*offset))?;
                    Cur::Disk(BufReader::with_capacity(64 * 1024, f).take(*len))
                }
            };
        }
    }
}
