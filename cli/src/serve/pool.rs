//! The evaluation pool: bodies are evaluated off the async workers (on tokio's blocking threads),
//! at most `--eval-threads` at once, and at most `--eval-per-webhook` of them for one webhook.
//! Waiting evaluations are served round-robin over the webhooks that have some: a flood to one
//! webhook queues behind itself, while other webhooks, the control plane and `/healthz` keep
//! their latency.

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
    /// client left just then), dropping the channel drops the slot, which frees it.
    waiting: HashMap<String, VecDeque<oneshot::Sender<Slot>>>,
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
    /// locked from, for the slots handed out).
    fn dispatch(&mut self, pool: &Arc<Mutex<Inner>>) {
        let mut passes = self.ring.len();
        while self.free > 0 && passes > 0 {
            let Some(key) = self.ring.pop_front() else { break };
            passes -= 1;
            if self.running.get(&key).copied().unwrap_or(0) >= self.per_key {
                self.ring.push_back(key);
                continue;
            }
            let Some(queue) = self.waiting.get_mut(&key) else { continue };
            let mut handed = false;
            while let Some(tx) = queue.pop_front() {
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

    /// Waits for a slot for `key` (a webhook), in its turn. Dropping the future gives up its
    /// place.
    pub async fn acquire(&self, key: &str) -> Slot {
        let rx = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let busy = inner.running.get(key).copied().unwrap_or(0);
            if inner.free > 0 && busy < inner.per_key && !inner.waiting.contains_key(key) {
                inner.take(key);
                return Slot { pool: self.inner.clone(), key: key.to_owned(), armed: true };
            }
            let (tx, rx) = oneshot::channel();
            if !inner.waiting.contains_key(key) {
                inner.ring.push_back(key.to_owned());
            }
            inner.waiting.entry(key.to_owned()).or_default().push_back(tx);
            rx
        };
        // The pool keeps every sender until it sends a slot, so an error cannot happen while
        // the pool lives; asking again is safe.
        match rx.await {
            Ok(slot) => slot,
            Err(_) => Box::pin(self.acquire(key)).await,
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
            let held = pool.acquire("k").await;
            let mut waiter = Box::pin(pool.acquire("k"));
            // Polled once: now it waits in the queue.
            assert!(tokio::time::timeout(Duration::from_millis(10), &mut waiter).await.is_err());
            drop(held); // hands the slot to the waiter...
            drop(waiter); // ...which goes away before it runs again.
            let again = tokio::time::timeout(Duration::from_secs(1), pool.acquire("k")).await;
            assert!(again.is_ok(), "the slot came back");
        }
        let inner = pool.inner.lock().unwrap();
        assert_eq!((inner.free, inner.running.len(), inner.waiting.len()), (1, 0, 0));
    }

    #[tokio::test]
    async fn a_flood_to_one_key_waits_behind_itself() {
        let pool = FairPool::new(2, 1);
        let a1 = pool.acquire("a").await;
        // A second slot for "a" waits (its cap is 1), while "b" gets the free one at once.
        let pending = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire("a").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pending.is_finished());
        let b = tokio::time::timeout(Duration::from_secs(1), pool.acquire("b")).await.expect("b is not held up");
        drop(b);
        assert!(!pending.is_finished(), "the cap holds with a free slot");
        drop(a1);
        let a2 = tokio::time::timeout(Duration::from_secs(1), pending).await.unwrap().unwrap();
        // Round-robin: with "a" waiting again and "c" waiting, "c" goes next when a slot frees.
        let pool3 = FairPool::new(1, 1);
        let held = pool3.acquire("x").await;
        let (p1, p2) = (pool3.clone(), pool3.clone());
        let first = tokio::spawn(async move { p1.acquire("a").await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = tokio::spawn(async move { p2.acquire("c").await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        let got = tokio::time::timeout(Duration::from_secs(1), first).await.unwrap().unwrap();
        assert_eq!(got.key, "a");
        drop(got);
        let got = tokio::time::timeout(Duration::from_secs(1), second).await.unwrap().unwrap();
        assert_eq!(got.key, "c");
        drop(a2);
    }
}
