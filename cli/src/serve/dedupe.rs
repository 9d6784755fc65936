//! SQLite's duplicate window in memory: the `X-GitHub-Delivery` ids each webhook's triggers
//! carried, and when, so that a repeat within the window is told apart without a lookup in
//! the database.
//!
//! Why in memory: GitHub's ids are random GUIDs, and an index keyed by them in the database
//! makes each id of a group-committed batch dirty a leaf of its own, each a WAL frame and a
//! checkpoint's copy (BENCHMARKS.md, 2026-12-03: random ids cost a third of SQLite's trigger
//! rate). On SQLite one process holds the database (the lock beside it), so this process
//! sees every trigger, and the set is the whole truth; the database keeps an append-only log
//! of the ids (`delivery_ids`, written in the trigger's own transaction) from which the set is
//! filled again at start. Postgres, shared by instances, keeps its table and primary key.
//!
//! Bounded in bytes, not only in ids: one map and one queue over all webhooks, each at most
//! [`SEEN_MAX`] entries of 16 bytes (the map's table at the bound: 2^20 buckets, 17 MiB; the
//! queue: 8 MiB; while the map grows, its old table too: about 35 MiB at most), whatever the
//! ids are and however many webhooks there are (one name each, at most the webhook quota).
//! Past the bound the oldest takes of any webhook are forgotten before their hour is up, and a
//! warning says so once: a webhook whose senders send more than the window holds shortens the
//! window of the others (a redelivery of an old id could then start again), never the
//! service's memory.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

/// The most delivery ids the window holds (over all webhooks): an hour of 145 triggers a
/// second, sustained, on one process.
pub(crate) const SEEN_MAX: usize = 1 << 19;

/// The delivery ids seen, over all webhooks, with when each was last taken (a repeat within
/// the window is not taken; one seen longer ago than that is taken over, as a fresh id).
pub(crate) struct SeenIds {
    /// Each webhook's current generation: its ids are keyed under it, so that forgetting a
    /// webhook (DeleteWebhook) is one removal here, and its old takes, unreachable, leave with
    /// the window's head.
    webhooks: HashMap<String, u64>,
    next_generation: u64,
    /// A take: the 64-bit hash of (generation, id) -> when. Ids are kept as hashes under a key
    /// drawn at start: a fixed size per id whatever the sender puts in the header, and
    /// collisions nobody can aim for (about one in 2^45 at the bound).
    at: HashMap<u64, f64>,
    keys: RandomState,
    /// Every take, oldest first (generation, for the webhook's count); an entry whose id was
    /// taken again later, or whose webhook was forgotten, is skipped when it is popped.
    order: VecDeque<(f64, u64)>,
    max: usize,
    warned: bool,
}

impl std::fmt::Debug for SeenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenIds")
            .field("webhooks", &self.webhooks.len())
            .field("ids", &self.at.len())
            .field("takes", &self.order.len())
            .finish()
    }
}

impl SeenIds {
    /// An empty window of at most `max` takes.
    pub(crate) fn new(max: usize) -> SeenIds {
        SeenIds {
            webhooks: HashMap::new(),
            next_generation: 0,
            at: HashMap::new(),
            keys: RandomState::new(),
            order: VecDeque::new(),
            max: max.max(1),
            warned: false,
        }
    }

    fn key(&self, generation: u64, delivery: &str) -> u64 {
        self.keys.hash_one((generation, delivery))
    }

    /// Whether `webhook` took `delivery` after `after` (a repeat).
    pub(crate) fn seen(&self, webhook: &str, delivery: &str, after: f64) -> bool {
        let Some(&generation) = self.webhooks.get(webhook) else { return false };
        self.at.get(&self.key(generation, delivery)).is_some_and(|&at| at > after)
    }

    /// Notes that `webhook` took `delivery` at `at` (after its transaction committed).
    pub(crate) fn take(&mut self, webhook: &str, delivery: &str, at: f64) {
        let generation = match self.webhooks.get(webhook) {
            Some(&generation) => generation,
            None => {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.webhooks.insert(webhook.to_owned(), generation);
                generation
            }
        };
        let key = self.key(generation, delivery);
        // Room first, so that the queue never grows past the bound (its capacity doubles).
        while self.order.len() >= self.max {
            if !self.warned {
                self.warned = true;
                tracing::warn!(
                    max = self.max,
                    "more delivery ids within the duplicate window than it holds: the oldest are forgotten early"
                );
            }
            self.pop_oldest();
        }
        self.at.insert(key, at);
        self.order.push_back((at, key));
    }

    /// Forgets every id of `webhook` (DeleteWebhook): a webhook put again under its name starts
    /// with none.
    pub(crate) fn forget_webhook(&mut self, webhook: &str) {
        self.webhooks.remove(webhook);
    }

    /// Forgets the takes at or before `before` (from the head: takes are in the order they
    /// happened, so a take dated later than the clock now says, after a step back, holds the
    /// ones behind it until their turn; the bound holds meanwhile). How many ids it forgot.
    pub(crate) fn forget_before(&mut self, before: f64) -> u64 {
        let mut forgotten = 0;
        while let Some(&(at, _)) = self.order.front()
            && at <= before
        {
            forgotten += u64::from(self.pop_oldest());
        }
        // Give back what a burst grew (the bound holds in any case).
        if self.order.capacity() > 4 * self.order.len().max(1024) {
            self.order.shrink_to(2 * self.order.len());
        }
        if self.at.capacity() > 4 * self.at.len().max(1024) {
            self.at.shrink_to(2 * self.at.len());
        }
        forgotten
    }

    /// Pops the oldest take; whether it was the id's last take (the id is forgotten).
    fn pop_oldest(&mut self) -> bool {
        let Some((at, key)) = self.order.pop_front() else { return false };
        if self.at.get(&key) == Some(&at) {
            self.at.remove(&key);
            return true;
        }
        false
    }

    /// Takes held now (counting an id taken over twice, and the takes of a forgotten webhook
    /// not yet popped).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

/// The window as the store shares it: the ids, held by a trigger batch from its check to its
/// commit (so that what is in it is what committed), and the webhooks deleted since, which the
/// next holder forgets before it looks.
#[derive(Debug)]
pub(crate) struct Window {
    ids: tokio::sync::Mutex<SeenIds>,
    /// Written without a wait right after a DeleteWebhook commits: a delete never waits for a
    /// trigger batch's commit, and nothing can come between its commit and this note.
    forgotten: std::sync::Mutex<Vec<String>>,
}

impl Window {
    /// The window of `ids`.
    pub(crate) fn new(ids: SeenIds) -> Window {
        Window { ids: tokio::sync::Mutex::new(ids), forgotten: std::sync::Mutex::new(Vec::new()) }
    }

    /// The ids, the webhooks deleted since the last holder forgotten.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, SeenIds> {
        let mut ids = self.ids.lock().await;
        let forgotten = std::mem::take(&mut *self.forgotten.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for name in &forgotten {
            ids.forget_webhook(name);
        }
        ids
    }

    /// Notes webhooks whose deletion committed: the next holder forgets their ids.
    pub(crate) fn forget(&self, webhooks: Vec<String>) {
        self.forgotten.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(webhooks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_is_seen_and_one_after_it_is_not() {
        let mut ids = SeenIds::new(10);
        ids.take("w", "d1", 1000.0);
        assert!(ids.seen("w", "d1", 999.0));
        assert!(!ids.seen("w", "d1", 1000.0), "taken at 1000, not after it");
        assert!(!ids.seen("v", "d1", 0.0), "ids are per webhook");
        assert!(!ids.seen("w", "d2", 0.0));
        // Taken over an hour later: the old take is skipped when pruned.
        ids.take("w", "d1", 5000.0);
        assert_eq!(ids.forget_before(4000.0), 0, "d1's take at 1000 was taken over");
        assert!(ids.seen("w", "d1", 4999.0));
        assert_eq!(ids.forget_before(5000.0), 1);
        assert!(!ids.seen("w", "d1", 0.0));
        assert_eq!(ids.len(), 0);
    }

    #[test]
    fn deleting_a_webhook_forgets_its_ids_only() {
        let mut ids = SeenIds::new(10);
        ids.take("w", "d1", 1.0);
        ids.take("v", "d1", 2.0);
        ids.forget_webhook("w");
        assert!(!ids.seen("w", "d1", 0.0));
        assert!(ids.seen("v", "d1", 0.0));
        // Put again under its name, it starts with none, and its old take leaves with the head.
        ids.take("w", "d2", 3.0);
        assert!(!ids.seen("w", "d1", 0.0) && ids.seen("w", "d2", 0.0));
        assert_eq!(ids.len(), 3, "the forgotten webhook's take is held until the head passes it");
        assert_eq!(ids.forget_before(1.5), 1);
        assert_eq!((ids.len(), ids.at.len()), (2, 2));
        assert!(ids.seen("v", "d1", 0.0) && ids.seen("w", "d2", 0.0));
    }

    /// Past the bound the oldest take of any webhook goes first, and neither the queue nor the
    /// map passes it, however the takes are spread: over many webhooks, one id taken again and
    /// again, webhooks deleted and put again.
    #[test]
    fn the_window_is_bounded_and_forgets_the_oldest_first() {
        let mut ids = SeenIds::new(3);
        ids.take("w", "a", 1.0);
        ids.take("v", "b", 2.0);
        ids.take("w", "c", 3.0);
        ids.take("v", "d", 4.0);
        assert_eq!(ids.len(), 3);
        assert!(!ids.seen("w", "a", 0.0), "the oldest, forgotten");
        assert!(ids.seen("v", "b", 0.0) && ids.seen("w", "c", 0.0) && ids.seen("v", "d", 0.0));
        for n in 0..1000 {
            ids.take("w", &format!("x{n}"), 10.0 + f64::from(n));
            assert!(ids.len() <= 3);
        }
        assert!(ids.seen("w", "x999", 0.0) && !ids.seen("v", "d", 0.0));

        let mut ids = SeenIds::new(64);
        for n in 0..10_000_u32 {
            let webhook = format!("w{}", n % 300);
            ids.take(&webhook, "same", f64::from(n));
            ids.take(&webhook, &format!("id{n}"), f64::from(n));
            if n % 7 == 0 {
                ids.forget_webhook(&webhook);
            }
            assert!(ids.order.len() <= 64 && ids.at.len() <= 64, "{ids:?}");
        }
        assert!(ids.webhooks.len() <= 300);
    }

    /// A burst grows the queue and the map to the bound; pruning gives what it took back.
    #[test]
    fn pruning_gives_back_what_a_burst_took() {
        let mut ids = SeenIds::new(1 << 16);
        for n in 0..(1 << 17) {
            ids.take("w", &n.to_string(), f64::from(n));
        }
        assert_eq!(ids.len(), 1 << 16);
        assert!(ids.order.capacity() <= 1 << 16, "the queue past the bound: {}", ids.order.capacity());
        let before = (ids.order.capacity(), ids.at.capacity());
        assert_eq!(ids.forget_before(f64::from(1 << 17) - 100.5), (1 << 16) - 100);
        let after = (ids.order.capacity(), ids.at.capacity());
        assert!(after.0 <= before.0 / 16 && after.1 <= before.1 / 16, "{before:?} -> {after:?}");
        assert!(ids.seen("w", &((1 << 17) - 1).to_string(), 0.0));
    }
}
