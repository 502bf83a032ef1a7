//! Deadlines without a timer per I/O. A connection keeps one `Sleep` per side
//! (client, upstream) for its whole life. A wait that completes at once never
//! touches it; a wait that has to wait moves it to its deadline, and moving a
//! deadline later (the common case: each request's deadline is later than
//! the last) is an atomic store in tokio's timer wheel, not a removal and an
//! insertion. NGINX keeps its timers the same way.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// One side's timer.
#[derive(Debug)]
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
}

impl Default for Deadline {
    fn default() -> Self {
        Self::new()
    }
}

/// Where an idle timer rests: far enough never to fire.
const FAR: Duration = Duration::from_secs(86_400);

impl Deadline {
    pub fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(FAR)),
        }
    }

    /// Runs `fut` until it completes or the deadline `at()` passes. `at` is
    /// asked only if `fut` does not complete on its first poll.
    pub async fn within<F: Future>(&mut self, at: impl FnOnce() -> Instant, fut: F) -> Result<F::Output, Elapsed> {
        let mut fut = pin!(fut);
        let mut at = Some(at);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if let Some(at) = at.take() {
                self.sleep.as_mut().reset(at());
            }
            match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// [`Deadline::within`] `d` from now (read only if the wait has to wait).
    pub async fn within_for<F: Future>(&mut self, d: Duration, fut: F) -> Result<F::Output, Elapsed> {
        self.within(|| Instant::now() + d, fut).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_never_arms_the_timer_and_a_pending_one_times_out() {
        let mut d = Deadline::new();
        assert_eq!(d.within_for(Duration::from_millis(10), async { 7 }).await, Ok(7));
        assert_eq!(
            d.within_for(Duration::from_millis(10), std::future::pending::<()>())
                .await,
            Err(Elapsed)
        );
        // Reused: a later deadline, then an earlier one, each kept exactly.
        let started = Instant::now();
        assert_eq!(
            d.within_for(Duration::from_secs(5), std::future::pending::<()>()).await,
            Err(Elapsed)
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let started = Instant::now();
        assert_eq!(
            d.within_for(Duration::from_millis(20), std::future::pending::<()>())
                .await,
            Err(Elapsed)
        );
        assert_eq!(started.elapsed(), Duration::from_millis(20));
        let slow = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            1
        };
        assert_eq!(d.within_for(Duration::from_millis(50), slow).await, Ok(1));
    }
}
