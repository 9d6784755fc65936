//! SQLite's duplicate window in memory: the `X-GitHub-Delivery` ids each webhook's triggers
//! carried, and when, so that a repeat within the window is told apart without a lookup in
//! the database.
//!
//! Why in memory: GitHub's ids are random GUIDs, and an index keyed by them in the database
//! makes each id of a group-committed batch dirty a leaf of its own, each a WAL frame and a
//! checkpoint's copy (BENCHMARKS.md, 2026-12-03: random ids cost a third of SQLite's trigger
//! rate). On SQLite one process holds the database (the directory's lock), so this process
//! sees every trigger, and the set is the whole truth; the database keeps an append-only log
//! of the ids (`delivery_ids`, written in the trigger's own transaction) from which the set is
//! filled again at start. Postgres, shared by instances, keeps its table and primary key.
//!
//! Bounded: at most [`SEEN_MAX`] ids at a time over all webhooks (about 40 MiB at most); past
//! it the oldest are forgotten before their hour is up, and a warning says so once.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

/// The most delivery ids the window holds (over all webhooks): an hour of 145 triggers a
/// second, sustained, on one process.
pub(crate) const SEEN_MAX: usize = 1 << 19;

/// The delivery ids seen, per webhook, with when each was last taken (a repeat within the
/// window is not taken; one seen longer ago than that is taken over, as a fresh id).
pub(crate) struct SeenIds {
    webhooks: HashMap<String, Seen>,
    /// Ids are kept as 64-bit hashes under a key drawn at start: a fixed size per id whatever
    /// the sender puts in the header, and collisions nobody can aim for (about one in 2^45 at
    /// the bound).
    keys: RandomState,
    /// Entries in every webhook's `order`: what the bound counts.
    len: usize,
    max: usize,
    warned: bool,
}

/// One webhook's ids.
#[derive(Default)]
struct Seen {
    at: HashMap<u64, f64>,
    /// Each take, oldest first; an entry whose id was taken again later is skipped when it is
    /// popped.
    order: VecDeque<(f64, u64)>,
}

impl std::fmt::Debug for SeenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenIds").field("webhooks", &self.webhooks.len()).field("len", &self.len).finish()
    }
}

impl SeenIds {
    /// An empty window of at most `max` ids.
    pub(crate) fn new(max: usize) -> SeenIds {
        SeenIds { webhooks: HashMap::new(), keys: RandomState::new(), len: 0, max: max.max(1), warned: false }
    }

    /// Whether `webhook` took `delivery` after `after` (a repeat).
    pub(crate) fn seen(&self, webhook: &str, delivery: &str, after: f64) -> bool {
        let key = self.keys.hash_one(delivery);
        self.webhooks.get(webhook).and_then(|s| s.at.get(&key)).is_some_and(|&at| at > after)
    }

    /// Notes that `webhook` took `delivery` at `at` (after its transaction committed).
    pub(crate) fn take(&mut self, webhook: &str, delivery: &str, at: f64) {
        let key = self.keys.hash_one(delivery);
        let seen = match self.webhooks.get_mut(webhook) {
            Some(seen) => seen,
            None => self.webhooks.entry(webhook.to_owned()).or_default(),
        };
        seen.at.insert(key, at);
        seen.order.push_back((at, key));
        self.len += 1;
        while self.len > self.max {
            if !self.warned {
                self.warned = true;
                tracing::warn!(
                    max = self.max,
                    "more delivery ids within the duplicate window than it holds: the oldest are forgotten early"
                );
            }
            self.forget_oldest();
        }
    }

    /// Forgets every id of `webhook` (DeleteWebhook).
    pub(crate) fn forget_webhook(&mut self, webhook: &str) {
        if let Some(seen) = self.webhooks.remove(webhook) {
            self.len -= seen.order.len();
        }
    }

    /// Forgets the ids taken at or before `before`; how many.
    pub(crate) fn forget_before(&mut self, before: f64) -> u64 {
        let mut forgotten = 0;
        for seen in self.webhooks.values_mut() {
            while let Some(&(at, key)) = seen.order.front()
                && at <= before
            {
                seen.order.pop_front();
                self.len -= 1;
                if seen.at.get(&key) == Some(&at) {
                    seen.at.remove(&key);
                    forgotten += 1;
                }
            }
        }
        self.webhooks.retain(|_, seen| !seen.order.is_empty());
        forgotten
    }

    /// Forgets the oldest take of all webhooks (past the bound: a few hundred webhooks at most).
    fn forget_oldest(&mut self) {
        let oldest = self
            .webhooks
            .iter()
            .filter_map(|(name, seen)| seen.order.front().map(|&(at, _)| (at, name)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, name)| name.clone());
        let Some(name) = oldest else { return };
        let Some(seen) = self.webhooks.get_mut(&name) else { return };
        if let Some((at, key)) = seen.order.pop_front() {
            self.len -= 1;
            if seen.at.get(&key) == Some(&at) {
                seen.at.remove(&key);
            }
        }
        if seen.order.is_empty() {
            self.webhooks.remove(&name);
        }
    }

    /// Ids held now (takes, counting an id taken over twice).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
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
        assert_eq!(ids.len(), 1);
    }

    /// Past the bound the oldest take of any webhook goes first, and the count never passes it.
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
    }
}
