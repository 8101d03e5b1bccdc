//! Limiters whose state lives in Redis, shared by every process of a fleet.
