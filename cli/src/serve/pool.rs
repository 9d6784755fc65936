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
    waiting: HashMap<String, VecDeque<oneshot::Sender<()>>>,
    /// Keys with waiters, in turn order.
    ring: VecDeque<String>,
}

/// One slot of the pool, for one webhook; freed (and handed on) when dropped.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<Mutex<Inner>>,
    key: String,
}

impl Inner {
    fn take(&mut self, key: &str) {
        self.free -= 1;
        *self.running.entry(key.to_owned()).or_default() += 1;
    }

    /// Hands free slots to waiters, one webhook after the other.
    fn dispatch(&mut self) {
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
                if tx.send(()).is_ok() {
                    handed = true;
                    break;
                }
                // That waiter gave up (its client went away): the next one.
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
                return Slot { pool: self.inner.clone(), key: key.to_owned() };
            }
            let (tx, rx) = oneshot::channel();
            if !inner.waiting.contains_key(key) {
                inner.ring.push_back(key.to_owned());
            }
            inner.waiting.entry(key.to_owned()).or_default().push_back(tx);
            rx
        };
        // The slot is counted as ours when the sender fires. The pool keeps every sender until
        // it fires it, so an error cannot happen while a slot lives; asking again is safe.
        match rx.await {
            Ok(()) => Slot { pool: self.inner.clone(), key: key.to_owned() },
            Err(_) => Box::pin(self.acquire(key)).await,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        inner.free += 1;
        if let Some(n) = inner.running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                inner.running.remove(&self.key);
            }
        }
        inner.dispatch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
