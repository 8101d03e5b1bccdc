//! The `RateLimit-Policy`, `RateLimit` and `Retry-After` field values.
//!
//! Both RateLimit fields are Structured Field Lists (RFC 9651) of one Item
//! each: the policy's name as an sf-string, with Integer parameters.
//! draft-ietf-httpapi-ratelimit-headers-11:
//!
//! - §3 `RateLimit-Policy: "<name>";q=<quota>;w=<window>`: `q` (§3.1.1)
//!   the quota in quota units (requests here, the default `qu`), `w`
//!   (§3.1.3, optional) the window in whole seconds, non-zero;
//! - §4 `RateLimit: "<name>";r=<available>;t=<seconds>`: `r` (§4.1.1) the
//!   available quota, `t` (§4.1.2) the effective window, "the number of
//!   seconds within which the client can use no more than the available
//!   quota".
//!
//! For an admission `r` is [`Decision::remaining`] and `t` is
//! [`Decision::reset_after`] (the time until the limiter is back to its full
//! quota); for a denial `r` is the remaining (0 for a unit request) and `t`
//! the `Retry-After` value, as §6 asks that `Retry-After` not name a time
//! earlier than the end of the effective window. Durations are rounded up
//! to whole seconds, so a client that waits `t` or `Retry-After` is never
//! early.

use std::fmt::{self, Write as _};
use std::time::Duration;

use http::HeaderValue;

use crate::{BuildError, Decision, Quota};

/// The largest sf-integer (RFC 9651 §3.3.1: at most 15 digits); larger
/// values (a [`Decision::RETRY_NEVER`] wait) are capped to it.
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// `d` in whole seconds, rounded up, as an sf-integer.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs()
        .saturating_add(u64::from(d.subsec_nanos() > 0))
        .min(SF_INTEGER_MAX)
}

/// A policy's settings were not valid field values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The name has a character an sf-string cannot hold (only printable
    /// ASCII, space to `~`).
    Name,
    /// A window of zero (`w` must be a non-zero number of seconds).
    ZeroWindow,
    /// A quota or window above the largest sf-integer
    /// (999,999,999,999,999).
    TooLarge,
    /// The quota the policy was derived from is invalid.
    Quota(BuildError),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name => f.write_str("policy name must be printable ASCII"),
            Self::ZeroWindow => f.write_str("policy window must be at least one second"),
            Self::TooLarge => f.write_str("policy quota or window exceeds 999,999,999,999,999"),
            Self::Quota(e) => write!(f, "invalid quota: {e}"),
        }
    }
}

impl std::error::Error for PolicyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Quota(e) => Some(e),
            _ => None,
        }
    }
}

/// A quota policy as the `RateLimit-Policy` field announces it (§3 of
/// draft-ietf-httpapi-ratelimit-headers-11): a name, a quota `q` in
/// requests and an optional window `w` in whole seconds. The name also
/// labels the `RateLimit` field.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::tower::Policy;
/// use sysblocks_rate_limiter::Quota;
///
/// let p = Policy::new("default", 100)?.window(Duration::from_secs(10))?;
/// assert_eq!(p.field_value(), r#""default";q=100;w=10"#);
/// // The burst, refilled in burst × emission interval (rounded up).
/// let p = Policy::from_quota("api", Quota::per_minute(60))?;
/// assert_eq!(p.field_value(), r#""api";q=60;w=60"#);
/// # Ok::<(), sysblocks_rate_limiter::tower::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The name as an sf-string, quotes and escapes included.
    name: String,
    quota: u64,
    window: Option<u64>,
}

impl Policy {
    /// A policy of `quota` requests, without a window.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Name`] if `name` is not printable ASCII;
    /// [`PolicyError::TooLarge`] if `quota` has more than 15 digits.
    pub fn new(name: &str, quota: u64) -> Result<Self, PolicyError> {
        if quota > SF_INTEGER_MAX {
            return Err(PolicyError::TooLarge);
        }
        Ok(Self {
            name: sf_string(name)?,
            quota,
            window: None,
        })
    }

    /// The same policy over a window of `window`, rounded up to whole
    /// seconds (sub-second precision is not supported, §3.1.3).
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroWindow`] for a zero window;
    /// [`PolicyError::TooLarge`] for one of more than 15 digits of seconds.
    pub fn window(mut self, window: Duration) -> Result<Self, PolicyError> {
        if window.is_zero() {
            return Err(PolicyError::ZeroWindow);
        }
        let secs = ceil_secs(window);
        if window.as_secs() >= SF_INTEGER_MAX {
            return Err(PolicyError::TooLarge);
        }
        self.window = Some(secs);
        Ok(self)
    }

    /// The policy of a [`Quota`]: `q` is its burst and `w` the time the
    /// burst takes to refill (burst × emission interval), rounded up to
    /// whole seconds, so that a client pacing itself by `q` per `w` never
    /// goes faster than the quota.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Quota`] for an invalid quota; as [`Policy::new`] and
    /// [`Policy::window`].
    pub fn from_quota(name: &str, quota: Quota) -> Result<Self, PolicyError> {
        quota.validate().map_err(PolicyError::Quota)?;
        let t = quota.emission_interval().map_err(PolicyError::Quota)?;
        let burst = quota.burst_size();
        let window = t.checked_mul(burst).ok_or(PolicyError::TooLarge)?;
        Self::new(name, u64::from(burst))?.window(window)
    }

    /// The `RateLimit-Policy` field value, e.g. `"default";q=100;w=10`.
    #[must_use]
    pub fn field_value(&self) -> String {
        let mut s = self.name.clone();
        // Writing to a String cannot fail.
        let _ = write!(s, ";q={}", self.quota);
        if let Some(w) = self.window {
            let _ = write!(s, ";w={w}");
        }
        s
    }

    /// The `RateLimit` field value for decision `d` under this policy's
    /// name, e.g. `"default";r=50;t=30`.
    #[must_use]
    pub fn rate_limit_value(&self, d: &Decision) -> String {
        rate_limit_value(&self.name, d)
    }

    /// The name as an sf-string (quoted and escaped).
    pub(crate) fn sf_name(&self) -> &str {
        &self.name
    }
}

/// `name` as an sf-string: quoted, with `"` and `\` escaped (RFC 9651
/// §3.3.3).
fn sf_string(name: &str) -> Result<String, PolicyError> {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if !(' '..='~').contains(&c) {
            return Err(PolicyError::Name);
        }
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    Ok(s)
}

/// `RateLimit: <sf_name>;r=<remaining>;t=<seconds>` for `d` (see the
/// module docs for the choice of `t`).
pub(crate) fn rate_limit_value(sf_name: &str, d: &Decision) -> String {
    String::from_utf8(rate_limit_bytes(sf_name, d)).expect("ASCII")
}

/// [`rate_limit_value`] as a header value, built on every response: the
/// value is written into a stack buffer and copied once into the header's
/// exact-sized allocation (a `Vec` with spare capacity would cost `Bytes` a
/// second allocation), falling back to a `Vec` for a long policy name.
pub(crate) fn rate_limit_header(sf_name: &str, d: &Decision) -> HeaderValue {
    let (r, t) = rate_limit_params(d);
    let mut buf = [0u8; 128];
    // `;r=` + 20 digits + `;t=` + 20 digits at most.
    if sf_name.len() + 46 <= buf.len() {
        let mut n = sf_name.len();
        buf[..n].copy_from_slice(sf_name.as_bytes());
        n = put(&mut buf, n, b";r=");
        n = put_decimal(&mut buf, n, r);
        n = put(&mut buf, n, b";t=");
        n = put_decimal(&mut buf, n, t);
        HeaderValue::from_bytes(&buf[..n]).expect("printable ASCII")
    } else {
        HeaderValue::try_from(rate_limit_bytes(sf_name, d)).expect("printable ASCII")
    }
}

/// `r` and `t` of the `RateLimit` field for `d` (see the module docs).
fn rate_limit_params(d: &Decision) -> (u64, u64) {
    let t = match d.retry_after() {
        Some(retry) if !d.is_allowed() => retry,
        _ => d.reset_after(),
    };
    (u64::from(d.remaining()), ceil_secs(t))
}

/// Copies `s` into `buf` at `at`; returns the new end.
fn put(buf: &mut [u8], at: usize, s: &[u8]) -> usize {
    buf[at..at + s.len()].copy_from_slice(s);
    at + s.len()
}

/// Writes `n` in decimal into `buf` at `at`; returns the new end.
fn put_decimal(buf: &mut [u8], at: usize, n: u64) -> usize {
    let mut digits = [0u8; 20];
    let start = decimal(&mut digits, n);
    put(buf, at, &digits[start..])
}

/// `n` in decimal at the end of `digits`; returns where it starts.
fn decimal(digits: &mut [u8; 20], mut n: u64) -> usize {
    let mut i = digits.len();
    loop {
        i -= 1;
        // A digit: the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

fn rate_limit_bytes(sf_name: &str, d: &Decision) -> Vec<u8> {
    let (r, t) = rate_limit_params(d);
    let mut v = Vec::with_capacity(sf_name.len() + 46);
    v.extend_from_slice(sf_name.as_bytes());
    v.extend_from_slice(b";r=");
    push_decimal(&mut v, r);
    v.extend_from_slice(b";t=");
    push_decimal(&mut v, t);
    v
}

/// Appends `n` in decimal.
fn push_decimal(v: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let start = decimal(&mut digits, n);
    v.extend_from_slice(&digits[start..]);
}

/// A header value from a string this module built (printable ASCII only).
pub(crate) fn header(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("field values are printable ASCII")
}

/// The `Retry-After` value of a denial: whole seconds, rounded up
/// (RFC 9110 §10.2.3 delay-seconds); `None` for a denial no wait cures.
pub(crate) fn retry_after(d: &Decision) -> Option<HeaderValue> {
    d.retry_after().map(|r| HeaderValue::from(ceil_secs(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gcra, ManualClock, RateLimiter};

    /// The examples of draft-ietf-httpapi-ratelimit-headers-11, §3.2 and
    /// Appendix B.2.1, built from their parameters.
    #[test]
    fn kat_policy_examples_of_the_draft() {
        let p = |name, q, w| {
            Policy::new(name, q)
                .unwrap()
                .window(Duration::from_secs(w))
                .unwrap()
                .field_value()
        };
        // §3.2
        assert_eq!(p("default", 100, 10), r#""default";q=100;w=10"#);
        // §3.2, two policies: one Item each, joined as an sf-list.
        assert_eq!(
            [p("permin", 50, 60), p("perhr", 1000, 3600)].join(","),
            r#""permin";q=50;w=60,"perhr";q=1000;w=3600"#
        );
        // §3 introduction.
        assert_eq!(
            [p("burst", 100, 60), p("daily", 1000, 86400)].join(","),
            r#""burst";q=100;w=60,"daily";q=1000;w=86400"#
        );
        // B.2.1, B.1.3
        assert_eq!(p("fixedwindow", 100, 60), r#""fixedwindow";q=100;w=60"#);
        assert_eq!(p("basic", 100, 60), r#""basic";q=100;w=60"#);
        // A policy without a window (w is optional).
        assert_eq!(
            Policy::new("default", 5).unwrap().field_value(),
            r#""default";q=5"#
        );
    }

    /// B.2.1: 99 of 100 per minute left, the window ending in 50 s:
    /// `RateLimit: "fixedwindow";r=99;t=50`. A fixed window of 100 per
    /// 60 s, 10 s in, one admitted: 99 left and the window resets in 50 s.
    #[test]
    fn kat_rate_limit_example_b_2_1() {
        let clock = ManualClock::new();
        let q = Quota::with_period(Duration::from_millis(600)).burst(100);
        let w = crate::FixedWindow::with_clock(q, clock.clone()).unwrap();
        clock.advance(Duration::from_secs(10));
        let d = w.check();
        let p = Policy::new("fixedwindow", 100)
            .unwrap()
            .window(Duration::from_secs(60))
            .unwrap();
        assert_eq!(p.rate_limit_value(&d), r#""fixedwindow";r=99;t=50"#);
        assert_eq!(p.field_value(), r#""fixedwindow";q=100;w=60"#);
    }

    /// B.1.4: a throttled response whose `Retry-After` and `RateLimit`
    /// name the same moment, 5 s ahead: `RateLimit: "default";r=0;t=5`.
    #[test]
    fn kat_throttled_example_b_1_4() {
        let clock = ManualClock::new();
        let g = Gcra::with_clock(Quota::with_period(Duration::from_secs(5)), clock).unwrap();
        assert!(g.check().is_allowed());
        let d = g.check();
        assert!(!d.is_allowed());
        let p = Policy::new("default", 1).unwrap();
        assert_eq!(p.rate_limit_value(&d), r#""default";r=0;t=5"#);
        assert_eq!(retry_after(&d).unwrap(), "5");
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 99, 1000, 123_456_789, u64::MAX] {
            let mut v = Vec::new();
            push_decimal(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }

    /// The stack-buffer path and the long-name fallback agree with the
    /// string form.
    #[test]
    fn rate_limit_header_matches_value() {
        let clock = ManualClock::new();
        let g = Gcra::with_clock(Quota::per_second(3).burst(7), clock).unwrap();
        let d = g.check();
        for name in ["\"default\"".to_owned(), format!("\"{}\"", "n".repeat(200))] {
            let v = rate_limit_value(&name, &d);
            assert_eq!(rate_limit_header(&name, &d), v.as_str());
        }
    }

    #[test]
    fn rounding_up_and_capping() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Decision::RETRY_NEVER), 18_446_744_074);
        assert_eq!(ceil_secs(Duration::MAX), SF_INTEGER_MAX);
        // 10 per second, burst 2: the burst refills in 0.2 s, announced as
        // 2 per second (never faster than the quota).
        let p = Policy::from_quota("x", Quota::per_second(10).burst(2)).unwrap();
        assert_eq!(p.field_value(), r#""x";q=2;w=1"#);
    }

    #[test]
    fn bad_policies_are_errors() {
        assert_eq!(Policy::new("é", 1), Err(PolicyError::Name));
        assert_eq!(Policy::new("a\nb", 1), Err(PolicyError::Name));
        assert_eq!(
            Policy::new("q\"\\", 1).unwrap().field_value(),
            r#""q\"\\";q=1"#
        );
        assert_eq!(
            Policy::new("x", 1).unwrap().window(Duration::ZERO),
            Err(PolicyError::ZeroWindow)
        );
        assert_eq!(
            Policy::new("x", SF_INTEGER_MAX + 1),
            Err(PolicyError::TooLarge)
        );
        assert!(matches!(
            Policy::from_quota("x", Quota::per_second(0)),
            Err(PolicyError::Quota(_))
        ));
    }
}
