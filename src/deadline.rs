//! Deadlines on a reused timer: a connection keeps one `Sleep` for its whole life, and each
//! wait moves it on only when it fires before the wait's own deadline. A busy keep-alive
//! connection thus registers and cancels no timer per request (tokio's `timeout` does both);
//! its timer fires about once per timeout period. Used by the client side's idle wait
//! (`server::h1`) and the node side's attempt deadline (`forward::h1`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// `fut` until `at` on `timer`, which may be set earlier (from the connection's last wait):
/// when it fires before `at` it is moved on to `at`. Yields `None` when `at` passed first.
pub struct Deadline<'a, F> {
    fut: Pin<&'a mut F>,
    timer: &'a mut Pin<Box<Sleep>>,
    at: Instant,
}

impl<'a, F> Deadline<'a, F> {
    /// Waits for `fut` until `at`, on `timer`.
    pub fn new(fut: Pin<&'a mut F>, timer: &'a mut Pin<Box<Sleep>>, at: Instant) -> Self {
        Deadline { fut, timer, at }
    }
}

impl<F: Future> Future for Deadline<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(out) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        loop {
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= this.at {
                return Poll::Ready(None);
            }
            this.timer.as_mut().reset(this.at);
        }
    }
}
