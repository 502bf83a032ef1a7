//! Upstream-side failures in the gateway's own log (SPEC §16): a `warn` line
//! with the cluster, the upstream and the kind, at most one per upstream and
//! kind per second, carrying how many were suppressed since the last one
//! (NGINX's `error_log` says as much about a failing upstream).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::kind::ErrorKind;

/// One upstream's rate limit, per failure kind.
#[derive(Debug)]
pub struct FailureLog {
    /// Per kind: the unix second of the last line, and failures not logged since.
    slots: [(AtomicU64, AtomicU64); ErrorKind::ALL.len()],
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| (AtomicU64::new(0), AtomicU64::new(0))),
        }
    }
}

impl FailureLog {
    /// Logs one failure of `upstream` (in `cluster`), or counts it as
    /// suppressed when a line for this kind went out this second.
    pub fn failure(&self, cluster: &str, upstream: &str, kind: ErrorKind) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(suppressed) = self.admit(kind, now) {
            tracing::warn!(cluster, upstream, kind = kind.as_str(), suppressed, "upstream failure");
        }
    }

    /// A TLS handshake with `upstream` failed (an untrusted certificate, a
    /// name mismatch, no common protocol): said with the reason, under the
    /// `connect_failed` limit it counts as.
    pub fn tls(&self, cluster: &str, upstream: &str, error: &dyn std::fmt::Display) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(suppressed) = self.admit(ErrorKind::ConnectFailed, now) {
            tracing::warn!(cluster, upstream, error = %error, suppressed, "upstream TLS handshake failed");
        }
    }

    /// An HTTP/2 connection to `upstream` could not be set up (no `h2` in
    /// ALPN, a failed preface): said with the reason, as `connect_failed`.
    pub fn h2(&self, cluster: &str, upstream: &str, error: &dyn std::fmt::Display) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if let Some(suppressed) = self.admit(ErrorKind::ConnectFailed, now) {
            tracing::warn!(cluster, upstream, error = %error, suppressed, "upstream HTTP/2 connection failed");
        }
    }

    /// `Some(suppressed)` when a line may go out at second `now`.
    fn admit(&self, kind: ErrorKind, now: u64) -> Option<u64> {
        let (second, suppressed) = &self.slots[kind.index()];
        let last = second.load(Ordering::Relaxed);
        if last != now
            && second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(suppressed.swap(0, Ordering::Relaxed));
        }
        suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_second_with_the_suppressed_count() {
        let log = FailureLog::default();
        let reset = ErrorKind::UpstreamReset;
        assert_eq!(log.admit(reset, 100), Some(0));
        assert_eq!(log.admit(reset, 100), None);
        assert_eq!(log.admit(reset, 100), None);
        assert_eq!(
            log.admit(ErrorKind::ConnectFailed, 100),
            Some(0),
            "kinds are limited apart"
        );
        assert_eq!(log.admit(reset, 101), Some(2));
        assert_eq!(log.admit(reset, 101), None);
    }
}
