//! Request coalescing: identical in-flight reads (same method without namespace, same
//! canonical params) go to a node once. The first caller becomes the *leader* and registers a
//! `watch` channel; later callers *join* and wait for the leader's outcome, each with its own
//! deadline. If the leader gives up (its client went away, or its own deadline passed), joiners
//! that still have time are told to go themselves — a waiter never fails because of the leader.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::dispatch::Delivered;

/// What a finished leader publishes.
#[derive(Clone, Debug)]
pub enum Published {
    /// The answer to the shared call, as it would be delivered alone (its status included).
    Done(Delivered),
    /// The leader failed or gave up; joiners should send their own request.
    GoYourself,
}

type Slot = watch::Receiver<Option<Published>>;

/// The table of in-flight reads.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Tiny critical sections only (insert / remove); never held across `.await`.
    inflight: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    keys: foldhash::HashMap<Arc<str>, InFlight>,
    /// Numbers the leaders, so a leader only ever removes its own entry.
    next: u64,
}

/// One in-flight read: its leader, and the channel to its joiners, made by the first joiner
/// (most reads are never joined, and a channel is an allocation).
#[derive(Debug)]
struct InFlight {
    leader: u64,
    joiners: Option<watch::Sender<Option<Published>>>,
}

/// The caller's role for one key.
#[derive(Debug)]
pub enum Role {
    /// Send the request; publish through the guard.
    Leader(LeaderGuard),
    /// Wait on the leader.
    Joiner(Slot),
}

/// Held by the leader; publishing (or dropping) completes the entry.
#[derive(Debug)]
pub struct LeaderGuard {
    table: Arc<Coalescer>,
    key: Arc<str>,
    id: u64,
    /// `publish` ran: the entry is gone (drop has nothing left to do).
    published: bool,
}

impl Coalescer {
    /// Joins the in-flight request for `key`, or becomes its leader (the table and the
    /// leader's guard share the caller's key).
    pub fn join(self: &Arc<Self>, key: &Arc<str>) -> Role {
        let mut table = self.lock();
        if let Some(entry) = table.keys.get_mut(&**key) {
            let tx = entry.joiners.get_or_insert_with(|| watch::channel(None).0);
            return Role::Joiner(tx.subscribe());
        }
        table.next += 1;
        let id = table.next;
        table.keys.insert(Arc::clone(key), InFlight { leader: id, joiners: None });
        Role::Leader(LeaderGuard { table: Arc::clone(self), key: Arc::clone(key), id, published: false })
    }

    /// Keys in flight (for tests and the dashboard).
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LeaderGuard {
    /// Publishes the leader's outcome (made by `outcome`, only when somebody joined) to every
    /// joiner.
    pub fn publish(mut self, outcome: impl FnOnce() -> Published) {
        self.published = true;
        // Out of the table, nobody can join any more: the receivers left are the joiners'.
        if let Some(tx) = self.remove().filter(|tx| tx.receiver_count() > 0) {
            let _ = tx.send(Some(outcome()));
        }
    }

    /// Takes this leader's entry out of the table; its joiners' channel, if anyone joined.
    fn remove(&self) -> Option<watch::Sender<Option<Published>>> {
        let mut table = self.table.lock();
        // One look-up: the entry is nearly always this leader's; a newer leader's goes back.
        let (key, entry) = table.keys.remove_entry(&*self.key)?;
        if entry.leader == self.id {
            return entry.joiners;
        }
        table.keys.insert(key, entry);
        None
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        if let Some(tx) = self.remove() {
            let _ = tx.send(Some(Published::GoYourself));
        }
    }
}

/// Waits for the leader until `deadline`; `None` when the deadline passed first.
pub async fn wait(mut rx: Slot, deadline: tokio::time::Instant) -> Option<Published> {
    let got = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
    match got {
        Ok(Ok(v)) => v.clone(),
        Ok(Err(_)) => Some(Published::GoYourself),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn joiners_get_the_leaders_outcome() {
        let c = Arc::new(Coalescer::default());
        let Role::Leader(lead) = c.join(&"k".into()) else { panic!("first is leader") };
        let Role::Joiner(rx) = c.join(&"k".into()) else { panic!("second joins") };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let waiter = tokio::spawn(wait(rx, deadline));
        let answer = Delivered {
            outcomes: vec![crate::jsonrpc::Outcome::error(1, "x")],
            backend: "a".into(),
            backend_index: 0,
            status: http::StatusCode::BAD_REQUEST,
            headers: std::sync::Arc::from([]),
            fallback: false,
            charge: Default::default(),
        };
        lead.publish(|| Published::Done(answer));
        let Some(Published::Done(got)) = waiter.await.unwrap() else { panic!("the leader's answer") };
        assert_eq!((&*got.backend, got.status), ("a", http::StatusCode::BAD_REQUEST), "with its status");
        assert!(c.is_empty());
        assert!(matches!(c.join(&"k".into()), Role::Leader(_)), "finished keys start afresh");
    }

    #[tokio::test]
    async fn a_leader_that_gives_up_releases_its_joiners() {
        let c = Arc::new(Coalescer::default());
        let lead = c.join(&"k".into());
        let Role::Joiner(rx) = c.join(&"k".into()) else { panic!() };
        drop(lead);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        assert!(matches!(wait(rx, deadline).await, Some(Published::GoYourself)));
        assert!(c.is_empty());
    }
}
