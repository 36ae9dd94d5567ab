//! The connections of one worker that have not sent a byte yet, oldest first: at
//! `MAX_CONNECTIONS` the oldest of them is closed to make room for a new connection, so a flood
//! of silent connections cannot lock normal clients out until the first-byte deadline.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Silent connections of one worker (tiny critical sections, never held across `.await`).
#[derive(Debug, Default)]
pub(super) struct Silent {
    inner: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    next: u64,
    /// Ids in accept order; an id no longer in `waiting` spoke (or closed) and is skipped.
    order: VecDeque<u64>,
    waiting: HashMap<u64, CancellationToken>,
}

/// One registered connection: it leaves the registry when it speaks or drops.
#[derive(Debug)]
pub(super) struct Registration {
    silent: Arc<Silent>,
    id: u64,
    /// Cancelled when the connection is evicted.
    pub(super) evicted: CancellationToken,
}

impl Silent {
    /// Registers a newly accepted connection as silent.
    pub(super) fn register(self: &Arc<Self>) -> Registration {
        let evicted = CancellationToken::new();
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let id = q.next;
        q.next += 1;
        q.order.push_back(id);
        q.waiting.insert(id, evicted.clone());
        Registration { silent: Arc::clone(self), id, evicted }
    }

    /// Closes the oldest connection that has not spoken yet; whether there was one.
    pub(super) fn evict_oldest(&self) -> bool {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(id) = q.order.pop_front() {
            if let Some(token) = q.waiting.remove(&id) {
                token.cancel();
                return true;
            }
        }
        false
    }
}

impl Registration {
    /// The connection sent its first byte (or ended): it is no longer silent.
    pub(super) fn spoke(&self) {
        let mut q = self.silent.inner.lock().unwrap_or_else(|e| e.into_inner());
        q.waiting.remove(&self.id);
        // Keep the order queue from growing with ids that spoke: drop them from the front.
        while q.order.front().is_some_and(|id| !q.waiting.contains_key(id)) {
            q.order.pop_front();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.spoke();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_silent_connection_is_evicted_first_and_speakers_never() {
        let s = Arc::new(Silent::default());
        let (a, b, c) = (s.register(), s.register(), s.register());
        a.spoke();
        assert!(s.evict_oldest());
        assert!(b.evicted.is_cancelled() && !a.evicted.is_cancelled() && !c.evicted.is_cancelled());
        drop(c);
        assert!(!s.evict_oldest(), "the one that spoke and the one that closed are not candidates");
    }
}
