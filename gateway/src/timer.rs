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
//! - a timer already registered with the waiting task's waker, and not
//!   fired, is not polled again: a wait that has to wait costs a comparison
//!   of wakers instead of a registration.
//!
//! A deadline is never early: the wait fails only once the clock has passed
//! it. It may be late by tokio's timer resolution (1 ms) plus the time until
//! the worker next polls its timers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// One side's timer.
#[derive(Debug)]
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    /// The waker the timer holds, while it holds one: set when a poll of the
    /// timer left it pending, cleared when the timer is moved (a moved timer
    /// is polled again before it is trusted to wake anyone).
    armed: Option<Waker>,
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
            armed: None,
        }
    }

    /// Runs `fut` until it completes or the deadline `at()` passes. `at` is
    /// asked only if `fut` does not complete on its first poll.
    pub fn within<F: Future, A: FnOnce() -> Instant>(&mut self, at: A, fut: F) -> Within<'_, F, A> {
        Within {
            fut,
            timer: self,
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
        timer: &'a mut Deadline,
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
        let timer = &mut **this.timer;
        let until = match *this.until {
            Some(until) => until,
            None => {
                // `at` is there until this first wait has read it.
                let until = this.at.take().map_or_else(Instant::now, |at| at());
                *this.until = Some(until);
                if until < timer.sleep.deadline() {
                    timer.move_to(until);
                }
                until
            }
        };
        loop {
            // Registered with this task and not fired: it will wake us.
            if timer.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !timer.sleep.is_elapsed() {
                return Poll::Pending;
            }
            // Outside tokio's task budget: a poll the budget refused would
            // leave the timer unregistered while `armed` says it is.
            match Pin::new(&mut tokio::task::unconstrained(timer.sleep.as_mut())).poll(cx) {
                Poll::Pending => {
                    match &mut timer.armed {
                        Some(armed) => armed.clone_from(cx.waker()),
                        none => *none = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
                // Fired at an earlier wait's deadline: ours is later.
                Poll::Ready(()) if Instant::now() < until => timer.move_to(until),
                Poll::Ready(()) => return Poll::Ready(Err(Elapsed)),
            }
        }
    }
}

impl Deadline {
    fn move_to(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.armed = None;
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
        assert_eq!(wait.timer.sleep.deadline(), set);
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

    #[tokio::test(start_paused = true)]
    async fn a_wait_first_polled_with_the_task_budget_spent_still_times_out() {
        let mut d = Deadline::new();
        let started = Instant::now();
        let wait = d.within_for(Duration::from_millis(40), std::future::pending::<()>());
        let mut wait = std::pin::pin!(wait);
        std::future::poll_fn(|cx| {
            // Spend the task's budget, as a long body transfer can, then wait.
            while let Poll::Ready(spent) = tokio::task::coop::poll_proceed(cx) {
                spent.made_progress();
            }
            assert!(wait.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        let outcome = tokio::time::timeout(Duration::from_secs(10), wait).await;
        assert_eq!(outcome, Ok(Err(Elapsed)));
        assert_eq!(started.elapsed(), Duration::from_millis(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_armed_by_an_earlier_wait_still_ends_a_later_one_exactly() {
        let mut d = Deadline::new();
        // The first wait arms the timer for t0 + 50 ms and ends at t0 + 5 ms.
        let quick = tokio::time::sleep(Duration::from_millis(5));
        assert_eq!(d.within_for(Duration::from_millis(50), quick).await, Ok(()));
        assert!(d.armed.is_some());
        // The next waits find it armed with their task's waker: the first
        // times out at its own deadline, past the timer's, and so does the
        // one after it, whose deadline is earlier than where that left it.
        for ms in [200, 30] {
            let started = Instant::now();
            let wait = d.within_for(Duration::from_millis(ms), std::future::pending::<()>());
            assert_eq!(wait.await, Err(Elapsed));
            assert_eq!(started.elapsed(), Duration::from_millis(ms));
        }
    }

    /// Polls `fut` once with a no-op waker.
    fn futures_poll<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }
}
