//! The evaluation pool: at most `--eval-threads` evaluations at once, and at most
//! `--eval-per-webhook` of them for one webhook. Waiting evaluations are served round-robin over
//! the webhooks that have some: a flood to one webhook queues behind itself, while other webhooks,
//! the control plane and `/healthz` keep their latency.
//!
//! A *short* evaluation (a body of at most 64 KiB, evaluated on the async worker that read it:
//! its cost bounded by its size, about 0.07 ms with singular paths and 0.2 ms with an indefinite
//! one at the engine's measured per-byte cost) may borrow a free slot beyond its webhook's share, one that no
//! waiting evaluation may use: the pool stays work-conserving for the common case of one busy
//! webhook (with a strict share, one webhook on two cores used one, and the machine idled 14 %
//! under load). What this costs the others is bounded: a webhook that comes while borrowed slots
//! are busy is handed the first slot freed, before any borrower, so it waits at most one short
//! evaluation. Long evaluations (large bodies, on blocking threads) never borrow.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A fair pool of evaluation slots.
#[derive(Debug, Clone)]
pub struct FairPool {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    free: usize,
    per_key: usize,
    running: HashMap<String, usize>,
    /// A waiter is handed its slot itself: if it goes away with the slot unclaimed (its
    /// client left just then), dropping the channel drops the slot, which frees it. With it,
    /// whether its evaluation is short (may borrow).
    waiting: HashMap<String, VecDeque<(oneshot::Sender<Slot>, bool)>>,
    /// Keys with waiters, in turn order.
    ring: VecDeque<String>,
}

/// One slot of the pool, for one webhook; freed (and handed on) when dropped.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<Mutex<Inner>>,
    key: String,
    /// False only for a slot that was never handed out (a send to a waiter that had gone):
    /// the pool takes it back under its lock, and its drop must do nothing.
    armed: bool,
}

impl Inner {
    fn take(&mut self, key: &str) {
        self.free -= 1;
        *self.running.entry(key.to_owned()).or_default() += 1;
    }

    fn give_back(&mut self, key: &str) {
        self.free += 1;
        if let Some(n) = self.running.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(key);
            }
        }
    }

    /// Hands free slots to waiters, one webhook after the other (`pool`: the mutex this is
    /// locked from, for the slots handed out): first to webhooks within their share, then, while
    /// slots are still free, to short evaluations beyond it.
    fn dispatch(&mut self, pool: &Arc<Mutex<Inner>>) {
        self.hand_out(pool, false);
        self.hand_out(pool, true);
    }

    /// One round-robin pass over the waiting webhooks; `borrowing`: past their share, to waiters
    /// whose evaluation is short.
    fn hand_out(&mut self, pool: &Arc<Mutex<Inner>>, borrowing: bool) {
        let mut passes = self.ring.len();
        while self.free > 0 && passes > 0 {
            let Some(key) = self.ring.pop_front() else { break };
            passes -= 1;
            let over = self.running.get(&key).copied().unwrap_or(0) >= self.per_key;
            let Some(queue) = self.waiting.get_mut(&key) else { continue };
            // Waiters that went away are not judged: a long one that left must not hold up the
            // short ones behind it.
            while queue.front().is_some_and(|(tx, _)| tx.is_closed()) {
                queue.pop_front();
            }
            if queue.is_empty() {
                self.waiting.remove(&key);
                continue;
            }
            if over && !(borrowing && queue.front().is_some_and(|(_, short)| *short)) {
                self.ring.push_back(key);
                continue;
            }
            let mut handed = false;
            // Past its share, only a short evaluation borrows: a long one behind a waiter that
            // went away waits for a slot within the share.
            while queue.front().is_some_and(|(_, short)| !over || *short) {
                let Some((tx, _)) = queue.pop_front() else { break };
                match tx.send(Slot { pool: pool.clone(), key: key.clone(), armed: true }) {
                    Ok(()) => {
                        handed = true;
                        break;
                    }
                    // That waiter gave up (its client went away): the slot comes back unused,
                    // and goes to the next one.
                    Err(mut slot) => slot.armed = false,
                }
            }
            let empty = queue.is_empty();
            if empty {
                self.waiting.remove(&key);
            }
            if handed {
                self.take(&key);
                passes = self.ring.len() + 1;
            }
            if !empty {
                self.ring.push_back(key);
            }
        }
    }
}

impl FairPool {
    /// `size` slots in all, `per_key` at most for one webhook (both at least 1).
    pub fn new(size: usize, per_key: usize) -> FairPool {
        let size = size.max(1);
        FairPool {
            inner: Arc::new(Mutex::new(Inner {
                free: size,
                per_key: per_key.clamp(1, size),
                running: HashMap::new(),
                waiting: HashMap::new(),
                ring: VecDeque::new(),
            })),
        }
    }

    /// Waits for a slot for `key` (a webhook), in its turn. `short`: the evaluation is short
    /// (see the module's docs), so it may borrow a free slot past the webhook's share. Dropping
    /// the future gives up its place.
    pub async fn acquire(&self, key: &str, short: bool) -> Slot {
        let rx = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let busy = inner.running.get(key).copied().unwrap_or(0);
            // This webhook's waiters that went away hold no place in its queue.
            if let Some(queue) = inner.waiting.get_mut(key) {
                while queue.front().is_some_and(|(tx, _)| tx.is_closed()) {
                    queue.pop_front();
                }
                if queue.is_empty() {
                    inner.waiting.remove(key);
                    inner.ring.retain(|k| k != key);
                }
            }
            // Every release hands free slots to whoever waits and may use them (`dispatch`), so
            // a slot free now is one no waiter may use: a short evaluation may borrow it. Behind
            // its own webhook's waiters, it waits its turn.
            if inner.free > 0 && !inner.waiting.contains_key(key) && (busy < inner.per_key || short) {
                inner.take(key);
                return Slot { pool: self.inner.clone(), key: key.to_owned(), armed: true };
            }
            let (tx, rx) = oneshot::channel();
            if !inner.waiting.contains_key(key) {
                inner.ring.push_back(key.to_owned());
            }
            inner.waiting.entry(key.to_owned()).or_default().push_back((tx, short));
            rx
        };
        // The pool keeps every sender until it sends a slot, so an error cannot happen while
        // the pool lives; asking again is safe.
        match rx.await {
            Ok(slot) => slot,
            Err(_) => Box::pin(self.acquire(key, short)).await,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut inner = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        inner.give_back(&self.key);
        inner.dispatch(&self.pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A waiter handed a slot just as its client goes away (its future dropped before it ran
    /// again) does not take the slot with it. Before the fix, each such waiter leaked a slot:
    /// under wrk, whose connections end with requests in flight, every slot was gone after a
    /// few runs and each delivery waited out its timeout (503).
    #[tokio::test]
    async fn a_waiter_that_goes_away_with_its_slot_frees_it() {
        let pool = FairPool::new(1, 1);
        for _ in 0..3 {
            let held = pool.acquire("k", false).await;
            let mut waiter = Box::pin(pool.acquire("k", false));
            // Polled once: now it waits in the queue.
            assert!(tokio::time::timeout(Duration::from_millis(10), &mut waiter).await.is_err());
            drop(held); // hands the slot to the waiter...
            drop(waiter); // ...which goes away before it runs again.
            let again = tokio::time::timeout(Duration::from_secs(1), pool.acquire("k", false)).await;
            assert!(again.is_ok(), "the slot came back");
        }
        let inner = pool.inner.lock().unwrap();
        assert_eq!((inner.free, inner.running.len(), inner.waiting.len()), (1, 0, 0));
    }

    #[tokio::test]
    async fn a_flood_to_one_key_waits_behind_itself() {
        let pool = FairPool::new(2, 1);
        let a1 = pool.acquire("a", false).await;
        // A second slot for "a" waits (its cap is 1), while "b" gets the free one at once.
        let pending = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire("a", false).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pending.is_finished());
        let b = tokio::time::timeout(Duration::from_secs(1), pool.acquire("b", false)).await.expect("b is not held up");
        drop(b);
        assert!(!pending.is_finished(), "the cap holds with a free slot");
        drop(a1);
        let a2 = tokio::time::timeout(Duration::from_secs(1), pending).await.unwrap().unwrap();
        // Round-robin: with "a" waiting again and "c" waiting, "c" goes next when a slot frees.
        let pool3 = FairPool::new(1, 1);
        let held = pool3.acquire("x", false).await;
        let (p1, p2) = (pool3.clone(), pool3.clone());
        let first = tokio::spawn(async move { p1.acquire("a", false).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = tokio::spawn(async move { p2.acquire("c", false).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        let got = tokio::time::timeout(Duration::from_secs(1), first).await.unwrap().unwrap();
        assert_eq!(got.key, "a");
        drop(got);
        let got = tokio::time::timeout(Duration::from_secs(1), second).await.unwrap().unwrap();
        assert_eq!(got.key, "c");
        drop(a2);
    }

    /// Short evaluations of one webhook use every free slot (no idle core beside a busy webhook),
    /// and a webhook that comes meanwhile is handed the first slot freed, before the borrower's
    /// own next evaluation; a borrower waiting takes a slot no other waiter may use.
    #[tokio::test]
    async fn short_evaluations_borrow_free_slots_and_hand_them_back_first() {
        let pool = FairPool::new(2, 1);
        let a1 = pool.acquire("a", true).await;
        let a2 = tokio::time::timeout(Duration::from_secs(1), pool.acquire("a", true)).await.expect("borrowed at once");
        let spawn = |key: &'static str| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(key, true).await })
        };
        let a3 = spawn("a");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = spawn("b");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!a3.is_finished() && !b.is_finished(), "no slot is free");
        drop(a1);
        let b = tokio::time::timeout(Duration::from_secs(1), b).await.unwrap().unwrap();
        assert_eq!(b.key, "b", "the webhook within its share goes first");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!a3.is_finished(), "a's own waiter queued first, yet b went first");
        drop(b);
        // Freed, with "a" at its share (a2 runs) and nobody else waiting: a3 borrows it.
        let a3 = tokio::time::timeout(Duration::from_secs(1), a3).await.unwrap().unwrap();
        drop((a2, a3));
        let inner = pool.inner.lock().unwrap();
        assert_eq!((inner.free, inner.running.len(), inner.waiting.len()), (2, 0, 0));
    }

    /// A long evaluation never borrows, not even the slot a short waiter ahead of it gave up.
    #[tokio::test]
    async fn a_long_waiter_behind_a_gone_borrower_waits_for_its_share() {
        let pool = FairPool::new(2, 1);
        let a1 = pool.acquire("a", false).await;
        let a2 = tokio::time::timeout(Duration::from_secs(1), pool.acquire("a", true)).await.expect("borrowed");
        let mut short = Box::pin(pool.acquire("a", true));
        assert!(tokio::time::timeout(Duration::from_millis(10), &mut short).await.is_err(), "queued");
        let long = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire("a", false).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(short); // goes away while it waits
        drop(a2); // frees the borrowed slot: not for the long one, past the share
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!long.is_finished(), "the long evaluation waits for a slot within the share");
        drop(a1);
        let got = tokio::time::timeout(Duration::from_secs(1), long).await.unwrap().unwrap();
        assert_eq!(got.key, "a");
    }

    /// A waiter that went away holds no place: a short evaluation that comes after it borrows
    /// the free slot at once instead of queueing behind it.
    #[tokio::test]
    async fn a_gone_waiter_holds_no_place_in_its_webhooks_queue() {
        let pool = FairPool::new(2, 1);
        let a1 = pool.acquire("a", false).await;
        let mut long = Box::pin(pool.acquire("a", false));
        assert!(tokio::time::timeout(Duration::from_millis(10), &mut long).await.is_err(), "past its share");
        drop(long);
        let short = tokio::time::timeout(Duration::from_secs(1), pool.acquire("a", true)).await;
        assert!(short.is_ok(), "the gone waiter did not hold the short one up");
        drop((a1, short));
        let inner = pool.inner.lock().unwrap();
        assert_eq!((inner.free, inner.running.len(), inner.waiting.len(), inner.ring.len()), (2, 0, 0, 0));
    }
}
