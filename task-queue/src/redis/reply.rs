//! Reading the server's replies into typed values. Anything the command
//! cannot return is a [`RedisQueueError::UnexpectedReply`], never a panic.

use redis::Value;

use crate::error::RedisQueueError;

/// A server error or a broken connection, typed.
pub(super) fn error(command: &'static str, e: &redis::RedisError) -> RedisQueueError {
    match e.code() {
        Some("WRONGTYPE") => RedisQueueError::WrongType { command },
        Some(code) => RedisQueueError::Server {
            command,
            code: code.to_owned(),
            detail: e.to_string(),
        },
        None if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error() =>
        {
            RedisQueueError::Connection {
                command,
                detail: e.to_string(),
            }
        }
        None => RedisQueueError::UnexpectedReply {
            command,
            detail: e.to_string(),
        },
    }
}

/// Whether the error means the consumer group (or its stream) is missing,
/// e.g. after `FLUSHALL`.
pub(super) fn is_no_group(e: &RedisQueueError) -> bool {
    matches!(e, RedisQueueError::Server { code, .. } if code == "NOGROUP")
}

fn unexpected(command: &'static str, detail: impl Into<String>) -> RedisQueueError {
    RedisQueueError::UnexpectedReply {
        command,
        detail: detail.into(),
    }
}

pub(super) fn int(command: &'static str, v: &Value) -> Result<i64, RedisQueueError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(command, "a string that is not an integer")),
        Value::SimpleString(s) => s
            .parse()
            .map_err(|_| unexpected(command, "a string that is not an integer")),
        other => Err(unexpected(
            command,
            format!("{other:?} instead of an integer"),
        )),
    }
}

pub(super) fn bytes(command: &'static str, v: Value) -> Result<Vec<u8>, RedisQueueError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Okay => Ok(b"OK".to_vec()),
        other => Err(unexpected(
            command,
            format!("{other:?} instead of a string"),
        )),
    }
}

pub(super) fn string(command: &'static str, v: Value) -> Result<String, RedisQueueError> {
    String::from_utf8(bytes(command, v)?).map_err(|_| unexpected(command, "a non-UTF-8 string"))
}

pub(super) fn array(command: &'static str, v: Value) -> Result<Vec<Value>, RedisQueueError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(
            command,
            format!("{other:?} instead of an array"),
        )),
    }
}

/// A stream entry as read: its id and field/value pairs.
#[derive(Debug)]
pub(super) struct RawEntry {
    pub(super) stream_id: String,
    pub(super) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RawEntry {
    pub(super) fn field(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    pub(super) fn number<T: std::str::FromStr>(&self, name: &[u8]) -> Option<T> {
        std::str::from_utf8(self.field(name)?).ok()?.parse().ok()
    }
}

/// `[[id, [field, value, ...]], ...]`. An entry whose fields are nil (it
/// was deleted while pending) has no fields.
pub(super) fn entries(command: &'static str, v: Value) -> Result<Vec<RawEntry>, RedisQueueError> {
    let mut out = Vec::new();
    for e in array(command, v)? {
        let mut parts = array(command, e)?.into_iter();
        let (Some(id), fields) = (parts.next(), parts.next()) else {
            return Err(unexpected(command, "an entry without an id"));
        };
        let stream_id = string(command, id)?;
        let flat = match fields {
            Some(f) => array(command, f)?,
            None => Vec::new(),
        };
        if flat.len() % 2 != 0 {
            return Err(unexpected(command, "an odd number of field values"));
        }
        let mut fields = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            fields.push((bytes(command, k)?, bytes(command, v)?));
        }
        out.push(RawEntry { stream_id, fields });
    }
    Ok(out)
}

/// `XREADGROUP`'s reply: `[[stream, entries], ...]` or nil; as (stream
/// name, entries).
pub(super) fn streams(
    command: &'static str,
    v: Value,
) -> Result<Vec<(String, Vec<RawEntry>)>, RedisQueueError> {
    let mut out = Vec::new();
    match v {
        Value::Map(pairs) => {
            for (k, e) in pairs {
                out.push((string(command, k)?, entries(command, e)?));
            }
        }
        v => {
            for s in array(command, v)? {
                let mut parts = array(command, s)?.into_iter();
                let (Some(name), Some(e)) = (parts.next(), parts.next()) else {
                    return Err(unexpected(command, "a stream without entries"));
                };
                out.push((string(command, name)?, entries(command, e)?));
            }
        }
    }
    Ok(out)
}

/// A stream id `<ms>-<seq>`, checked.
pub(super) fn check_stream_id(s: &str) -> Result<(), RedisQueueError> {
    let ok = s.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty() && !seq.is_empty() && ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(RedisQueueError::BadStreamId(s.to_owned()))
    }
}
