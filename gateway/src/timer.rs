//! Deadlines without a timer per I/O. A connection keeps one `Sleep` per side
//! (client, upstream) for its whole life, and moves it lazily, the way NGINX
//! keeps its timers:
//!
//! - a wait that completes on its first poll never touches the timer (nor
//!   reads the clock);
//! - a wait that has to wait moves the timer only when its deadline is
//!   earlier than where the timer stands. A later deadline (the common case:
//!   each request's deadline is later than the last) leaves the timer where
//!   it is; if the timer fires first, the wait checks the clock against its
//!   own deadline and moves the timer there then. So a keep-alive connection
//!   moves its timers about once per timeout period, not once per request.
//!
//! A deadline is never early: the wait fails only once the clock has passed
//! it. It may be late by tokio's timer resolution (1 ms) plus the time until
//! the worker next polls its timers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
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
    pub fn within<F: Future, A: FnOnce() -> Instant>(&mut self, at: A, fut: F) -> Within<'_, F, A> {
        Within {
            fut,
            sleep: self.sleep.as_mut(),
            at: Some(at),
            until: None,
        }
    }

    /// [`Deadline::within`] `d` from now (read only if the wait has to wait).
    pub fn within_for<F: Future>(&mut self, d: Duration, fut: F) -> Within<'_, F, impl FnOnce() -> Instant> {
        self.within(move || Instant::now() + d, fut)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Deadline::within`].
    pub struct Within<'a, F, A> {
        #[pin]
        fut: F,
        sleep: Pin<&'a mut Sleep>,
        at: Option<A>,
        // This wait's deadline, once it has had to wait.
        until: Option<Instant>,
    }
}

impl<F: Future, A: FnOnce() -> Instant> Future for Within<'_, F, A> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let until = match *this.until {
            Some(until) => until,
            None => {
                // `at` is there until this first wait has read it.
                let until = this.at.take().map_or_else(Instant::now, |at| at());
                *this.until = Some(until);
                if until < this.sleep.deadline() {
                    this.sleep.as_mut().reset(until);
                }
                until
            }
        };
        loop {
            match this.sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Fired at an earlier wait's deadline: ours is later.
                Poll::Ready(()) if Instant::now() < until => this.sleep.as_mut().reset(until),
                Poll::Ready(()) => return Poll::Ready(Err(Elapsed)),
            }
        }
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

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_leaves_the_timer_in_place_and_is_still_kept_exactly() {
        let mut d = Deadline::new();
        let sleeps = |ms| tokio::time::sleep(Duration::from_millis(ms));
        // A wait that waits sets the timer to its deadline (t0 + 100 ms)...
        assert_eq!(d.within_for(Duration::from_millis(100), sleeps(10)).await, Ok(()));
        let set = d.sleep.deadline();
        // ...and a later one (t0 + 10 ms + 1 s) does not move it,
        let started = Instant::now();
        let wait = d.within_for(Duration::from_secs(1), std::future::pending::<()>());
        let mut wait = std::pin::pin!(wait);
        assert!(futures_poll(wait.as_mut()).is_pending());
        assert_eq!(wait.sleep.deadline(), set);
        // but it still times out at its own deadline, not the timer's.
        assert_eq!(wait.await, Err(Elapsed));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // An earlier deadline than the timer's moves it back: exact too.
        let mut far = Deadline::new();
        let started = Instant::now();
        assert_eq!(
            far.within_for(Duration::from_millis(30), std::future::pending::<()>())
                .await,
            Err(Elapsed)
        );
        assert_eq!(started.elapsed(), Duration::from_millis(30));
        // A wait that completes at once never moves it.
        let set = far.sleep.deadline();
        assert_eq!(far.within_for(Duration::from_millis(1), async { 3 }).await, Ok(3));
        assert_eq!(far.sleep.deadline(), set);
    }

    /// Polls `fut` once with a no-op waker.
    fn futures_poll<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }
}
