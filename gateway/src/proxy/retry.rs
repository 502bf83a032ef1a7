//! Retries (SPEC §15): which failures a route retries, whether the request
//! can be sent again, and how long to wait. The budget that bounds them is
//! `upstream::budget`.

use std::cell::Cell;
use std::time::Duration;

use http1::RequestHead;
use plan::Retry;

use crate::error::ErrorKind;
use crate::upstream::budget::Reason;
use crate::upstream::now_ms;

/// Whether `policy` retries `reason`.
pub fn covers(policy: &Retry, reason: Reason) -> bool {
    match reason {
        Reason::Kind(k) => policy.on_kinds.iter().any(|n| n == k.as_str()),
        Reason::Status(s) => policy.on_status.contains(&s),
    }
}

/// Whether the request can go out again: no body byte was sent (a request
/// without a body or with `Content-Length: 0`, or a failure before anything
/// was written). Bodies are streamed, never buffered, so a body that left
/// cannot be sent twice.
pub fn replayable(head: &RequestHead, reason: Reason) -> bool {
    !head.body.has_body()
        || matches!(
            reason,
            Reason::Kind(ErrorKind::ConnectFailed | ErrorKind::ConnectTimeout | ErrorKind::UpstreamOverloaded)
        )
}

thread_local! {
    static SEED: Cell<u64> = Cell::new(0x2545_f491_4f6c_dd1d ^ now_ms());
}

/// The wait before retry number `retry` (1 for the first): `backoffMs`,
/// doubling, each jittered to between half and one and a half of it.
pub fn backoff(policy: &Retry, retry: u32) -> Duration {
    let base = policy.backoff_ms.saturating_mul(1 << retry.saturating_sub(1).min(10));
    let r = SEED.with(|s| {
        // xorshift64: jitter needs no cryptographic quality.
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    Duration::from_millis(base / 2 + r % (base + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        let p = Retry {
            attempts: 3,
            on_kinds: vec![],
            on_status: vec![],
            backoff_ms: 100,
            budget_percent: 20,
        };
        for _ in 0..100 {
            let first = backoff(&p, 1).as_millis();
            let second = backoff(&p, 2).as_millis();
            assert!((50..=150).contains(&first), "{first}");
            assert!((100..=300).contains(&second), "{second}");
        }
    }
}
