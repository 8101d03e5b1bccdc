//! [`Durability`]: what an acknowledged submit survives, read from the
//! server's append-only file settings.

use super::reply;

/// What the server promises for a write it acknowledged, read from
/// `CONFIG GET appendonly` and `CONFIG GET appendfsync` when the queue is
/// built. A submit that returned `Ok` means:
///
/// - [`Durability::Always`] (`appendonly yes`, `appendfsync always`): the
///   server wrote and fsync'd the task to its append-only file before it
///   answered; the task survives a crash of the server (SIGKILL) and of
///   the machine (power loss).
/// - [`Durability::EverySec`]: written to the file (the operating system's
///   cache) before the answer, fsync'd about once a second; a power loss
///   or OS crash can lose the last second or two of acknowledged tasks,
///   and a server crash can too when a slow disk made the server postpone
///   the write.
/// - [`Durability::No`]: written to the file, flushed whenever the
///   operating system chooses (typically within 30 seconds); a power loss
///   can lose that much.
/// - [`Durability::Off`] (`appendonly no`): in memory only (plus RDB
///   snapshots, if configured); a server crash loses every task since the
///   last snapshot.
/// - [`Durability::Unknown`]: `CONFIG` was refused (e.g. renamed): nothing
///   is known.
///
/// Replication does not change this: an acknowledged write may not have
/// reached a replica when the primary fails over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `appendonly yes`, `appendfsync always`.
    Always,
    /// `appendonly yes`, `appendfsync everysec`.
    EverySec,
    /// `appendonly yes`, `appendfsync no`.
    No,
    /// `appendonly no`.
    Off,
    /// The settings could not be read.
    Unknown,
}

impl Durability {
    /// Whether the server can lose a task whose submit returned `Ok` (in a
    /// crash of the server or of its machine): everything but
    /// [`Durability::Always`]. [`RedisStats::may_lose_acknowledged`](super::RedisStats::may_lose_acknowledged)
    /// carries it, for a start-up warning.
    #[must_use]
    pub fn may_lose_acknowledged(self) -> bool {
        self != Self::Always
    }
}

/// `CONFIG GET` of one setting; `None` if refused or not answered.
fn config_get(conn: &mut redis::Connection, name: &str) -> Option<String> {
    let v: redis::Value = redis::cmd("CONFIG").arg("GET").arg(name).query(conn).ok()?;
    let pairs = match v {
        redis::Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        v => reply::array("CONFIG GET", v).ok()?,
    };
    let mut it = pairs.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if reply::string("CONFIG GET", k)
            .ok()?
            .eq_ignore_ascii_case(name)
        {
            return reply::string("CONFIG GET", v).ok();
        }
    }
    None
}

pub(super) fn read_durability(conn: &mut redis::Connection) -> Durability {
    let Some(aof) = config_get(conn, "appendonly") else {
        return Durability::Unknown;
    };
    if !aof.eq_ignore_ascii_case("yes") {
        return Durability::Off;
    }
    match config_get(conn, "appendfsync").as_deref() {
        Some("always") => Durability::Always,
        Some("everysec") => Durability::EverySec,
        Some("no") => Durability::No,
        _ => Durability::Unknown,
    }
}
