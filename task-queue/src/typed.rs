//! Typed payloads (feature `serde`): a [`Task`] carries any serde type as
//! JSON, and a [`Delivery`] (or a dead letter's task) decodes it again.
//! The payload stays bytes underneath, so both backends, the size limit
//! and the dead letters work as for any other payload. JSON rather than a
//! binary format so that producers and workers in other languages can
//! share a Redis queue.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::PayloadError;
use crate::jobs::Delivery;
use crate::task::Task;

impl Task {
    /// A `Normal` task whose payload is `value` as JSON.
    ///
    /// # Errors
    ///
    /// [`PayloadError::Encode`] if `value` cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// use sysblocks_task_queue::{Task, TaskQueue};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Transcode { video: String, height: u32 }
    ///
    /// let q = TaskQueue::builder().build().unwrap();
    /// let job = Transcode { video: "v42.mp4".into(), height: 720 };
    /// q.submit(Task::serialize(&job).unwrap()).unwrap();
    /// let d = q.lease().unwrap();
    /// assert_eq!(d.deserialize::<Transcode>().unwrap(), job);
    /// ```
    pub fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, PayloadError> {
        serde_json::to_vec(value)
            .map(Self::new)
            .map_err(|e| PayloadError::Encode(e.to_string()))
    }

    /// The payload decoded from JSON as a `T`.
    ///
    /// # Errors
    ///
    /// [`PayloadError::Decode`] if the payload is not a `T` in JSON.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        serde_json::from_slice(self.payload()).map_err(|e| PayloadError::Decode(e.to_string()))
    }
}

impl Delivery {
    /// The task's payload decoded from JSON as a `T` (see
    /// [`Task::serialize`]). In a handler, `?` turns the error into a
    /// failed attempt.
    ///
    /// # Errors
    ///
    /// [`PayloadError::Decode`] if the payload is not a `T` in JSON.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        self.task().deserialize()
    }
}
