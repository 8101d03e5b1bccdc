//! The record a store keeps per task, and its byte encoding (the format
//! of the durable store's values).
//!
//! Version 2 of the encoding, little-endian:
//!
//! ```text
//! version (1) = 2 | id (8) | priority (1) | attempts (4) | restarts (4)
//! | written_at (8) | state tag (1) | state fields | payload length (8)
//! | payload | CRC-32C of every byte before it (4)
//! ```
//!
//! The checksum is checked before anything else is read, so a damaged
//! record is refused as a whole, and a length field can never ask for more
//! bytes than the record holds: decoding allocates at most the input's size.

use crate::crc::crc32c;
use crate::error::StoreError;
use crate::task::{Priority, Task, TaskId};

/// Where a stored task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// Waiting to run, not before `run_at` (clock nanoseconds).
    Pending {
        /// Earliest start, in the queue clock's nanoseconds.
        run_at: u64,
    },
    /// Handed to a worker whose lease ends at `until`.
    Leased {
        /// End of the lease, in the queue clock's nanoseconds.
        until: u64,
    },
    /// Out of attempts; kept in the dead-letter queue.
    Dead {
        /// The last failure.
        error: String,
    },
}

/// What a [`Store`](crate::Store) keeps per task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task's id.
    pub id: TaskId,
    /// The task.
    pub task: Task,
    /// Deliveries so far, including the ones cut short by a restart.
    pub attempts: u32,
    /// Deliveries cut short by a restart: the task was found leased when a
    /// queue started over the store, so the process that ran it is gone.
    /// They are not failures of the task and do not count against
    /// `max_attempts` (`attempts - restarts` does); they have their own
    /// limit, `max_restarts`.
    pub restarts: u32,
    /// Where it stands.
    pub state: RecordState,
    /// The clock's time when the record was written. A restarted process
    /// whose clock reads earlier than this (a fresh monotonic clock) keeps
    /// the remaining delay of a pending task relative to this moment.
    pub written_at: u64,
}

const RECORD_VERSION: u8 = 2;
/// The bytes of the trailing checksum.
const CRC_LEN: usize = 4;

impl TaskRecord {
    /// The record as bytes, as the durable store keeps it.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.task.payload().len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.id.0.to_le_bytes());
        out.push(self.task.priority().index() as u8);
        out.extend_from_slice(&self.attempts.to_le_bytes());
        out.extend_from_slice(&self.restarts.to_le_bytes());
        out.extend_from_slice(&self.written_at.to_le_bytes());
        match &self.state {
            RecordState::Pending { run_at } => {
                out.push(0);
                out.extend_from_slice(&run_at.to_le_bytes());
            }
            RecordState::Leased { until } => {
                out.push(1);
                out.extend_from_slice(&until.to_le_bytes());
            }
            RecordState::Dead { error } => {
                out.push(2);
                out.extend_from_slice(&(error.len() as u64).to_le_bytes());
                out.extend_from_slice(error.as_bytes());
            }
        }
        out.extend_from_slice(&(self.task.payload().len() as u64).to_le_bytes());
        out.extend_from_slice(self.task.payload());
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The length of [`TaskRecord::encode`]'s output, without encoding.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let state = match &self.state {
            RecordState::Pending { .. } | RecordState::Leased { .. } => 8,
            RecordState::Dead { error } => 8usize.saturating_add(error.len()),
        };
        // version, id, priority, attempts, restarts, written_at, state
        // tag, payload length, checksum.
        (1 + 8 + 1 + 4 + 4 + 8 + 1 + 8 + CRC_LEN)
            .saturating_add(state)
            .saturating_add(self.task.payload().len())
    }

    /// Reads a record written by [`TaskRecord::encode`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the bytes are not such a record: too
    /// short, a checksum that does not match (a flipped bit anywhere), an
    /// unknown version, or fields that do not add up. Never panics, and
    /// allocates no more than `bytes.len()`.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt {
            detail: format!("bad task record: {what}"),
        };
        let Some(body_len) = bytes.len().checked_sub(CRC_LEN) else {
            return Err(corrupt("truncated"));
        };
        let (body, stored) = bytes.split_at(body_len);
        let mut crc = [0u8; CRC_LEN];
        crc.copy_from_slice(stored);
        if crc32c(body) != u32::from_le_bytes(crc) {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Reader {
            bytes: body,
            pos: 0,
        };
        if r.u8()? != RECORD_VERSION {
            return Err(corrupt("unknown record version"));
        }
        let id = TaskId(r.u64()?);
        let priority = priority_from_byte(r.u8()?).ok_or_else(|| corrupt("priority"))?;
        let attempts = r.u32()?;
        let restarts = r.u32()?;
        let written_at = r.u64()?;
        let state = match r.u8()? {
            0 => RecordState::Pending { run_at: r.u64()? },
            1 => RecordState::Leased { until: r.u64()? },
            2 => {
                let len = r.len()?;
                let error = String::from_utf8(r.take(len)?.to_vec())
                    .map_err(|_| corrupt("error text is not UTF-8"))?;
                RecordState::Dead { error }
            }
            _ => return Err(corrupt("state tag")),
        };
        let len = r.len()?;
        let payload = r.take(len)?.to_vec();
        if r.pos != body.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Self {
            id,
            task: Task::new(payload).with_priority(priority),
            attempts,
            restarts,
            state,
            written_at,
        })
    }
}

/// The inverse of [`Priority::index`], which `encode` writes.
fn priority_from_byte(b: u8) -> Option<Priority> {
    match b {
        0 => Some(Priority::High),
        1 => Some(Priority::Normal),
        2 => Some(Priority::Low),
        _ => None,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(StoreError::Corrupt {
                detail: "bad task record: truncated".into(),
            }),
        }
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn len(&mut self) -> Result<usize, StoreError> {
        usize::try_from(self.u64()?).map_err(|_| StoreError::Corrupt {
            detail: "bad task record: length".into(),
        })
    }
}

#[cfg(all(test, not(sysblocks_loom)))]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_reported() {
        let states = [
            RecordState::Pending { run_at: 7 },
            RecordState::Leased { until: u64::MAX },
            RecordState::Dead {
                error: "boom é".into(),
            },
        ];
        for (i, state) in states.into_iter().enumerate() {
            let rec = TaskRecord {
                id: TaskId(i as u64 * 1000 + 1),
                task: Task::new(vec![1, 2, 3]).with_priority(Priority::Low),
                attempts: 3,
                restarts: 2,
                state,
                written_at: 99,
            };
            let bytes = rec.encode();
            assert_eq!(bytes.len(), rec.encoded_len());
            assert_eq!(TaskRecord::decode(&bytes).unwrap(), rec);
            for cut in 0..bytes.len() {
                assert!(TaskRecord::decode(&bytes[..cut]).is_err());
            }
            let mut extra = bytes.clone();
            extra.push(0);
            assert!(TaskRecord::decode(&extra).is_err());
            // Every single flipped bit is caught by the checksum.
            for i in 0..bytes.len() * 8 {
                let mut flipped = bytes.clone();
                flipped[i / 8] ^= 1 << (i % 8);
                let err = TaskRecord::decode(&flipped).unwrap_err();
                assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
            }
        }
    }

    /// The layout the module docs describe, byte for byte.
    #[test]
    fn known_encoding() {
        let rec = TaskRecord {
            id: TaskId(0x0102),
            task: Task::new(*b"ab").with_priority(Priority::High),
            attempts: 3,
            restarts: 1,
            state: RecordState::Pending { run_at: 5 },
            written_at: 7,
        };
        let mut want = vec![2u8];
        want.extend_from_slice(&0x0102u64.to_le_bytes());
        want.push(0);
        want.extend_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&7u64.to_le_bytes());
        want.push(0);
        want.extend_from_slice(&5u64.to_le_bytes());
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(b"ab");
        let crc = crc32c(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(rec.encode(), want);
    }
}
