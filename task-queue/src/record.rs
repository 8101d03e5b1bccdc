//! The record a store keeps per task, and its byte encoding (the format
//! of the durable store's values).

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
    /// Deliveries so far.
    pub attempts: u32,
    /// Where it stands.
    pub state: RecordState,
    /// The clock's time when the record was written. A restarted process
    /// whose clock reads earlier than this (a fresh monotonic clock) keeps
    /// the remaining delay of a pending task relative to this moment.
    pub written_at: u64,
}

const RECORD_VERSION: u8 = 1;

impl TaskRecord {
    /// The record as bytes, as the durable store keeps it.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.task.payload().len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.id.0.to_le_bytes());
        out.push(self.task.priority().index() as u8);
        out.extend_from_slice(&self.attempts.to_le_bytes());
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
        out
    }

    /// Reads a record written by [`TaskRecord::encode`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the bytes are not such a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader { bytes, pos: 0 };
        let corrupt = |what: &str| StoreError::Corrupt {
            detail: format!("bad task record: {what}"),
        };
        if r.u8()? != RECORD_VERSION {
            return Err(corrupt("unknown record version"));
        }
        let id = TaskId(r.u64()?);
        let priority = priority_from_byte(r.u8()?).ok_or_else(|| corrupt("priority"))?;
        let attempts = r.u32()?;
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
        if r.pos != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Self {
            id,
            task: Task::new(payload).with_priority(priority),
            attempts,
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
                state,
                written_at: 99,
            };
            let bytes = rec.encode();
            assert_eq!(TaskRecord::decode(&bytes).unwrap(), rec);
            for cut in 0..bytes.len() {
                assert!(TaskRecord::decode(&bytes[..cut]).is_err());
            }
            let mut extra = bytes.clone();
            extra.push(0);
            assert!(TaskRecord::decode(&extra).is_err());
        }
    }
}
