//! The entries that wait for the delivery log's next write, coalesced per webhook. A webhook's
//! log keeps its newest `--deliveries-keep` entries, so of the entries that wait for one write
//! only the newest `keep` of each webhook can outlive that write's trim: an older one is let go
//! as soon as a newer one pushes it out (it is superseded, as the trim would have deleted it).
//! Under a flood this bounds what a write inserts to `keep` rows per webhook, whatever the
//! rate; the rows it does insert keep their order of arrival.

use std::collections::{HashMap, VecDeque};

/// Entries waiting for a write, at most `keep` per webhook.
#[derive(Debug)]
pub(super) struct Pending<T> {
    keep: usize,
    /// An entry's webhook.
    webhook: fn(&T) -> &str,
    by_webhook: HashMap<String, VecDeque<(u64, usize, T)>>,
    len: usize,
    /// The body bytes the waiting entries hold.
    bytes: usize,
    /// The arrival number of the next entry (rows are written in arrival order).
    next: u64,
}

impl<T> Pending<T> {
    /// Nothing waiting; `keep` (at least 1) entries kept per webhook, which `webhook` reads
    /// from an entry.
    pub(super) fn new(keep: usize, webhook: fn(&T) -> &str) -> Pending<T> {
        Pending { keep: keep.max(1), webhook, by_webhook: HashMap::new(), len: 0, bytes: 0, next: 0 }
    }

    /// Adds an entry, its webhook's newest (holding `bytes` of body); that webhook's oldest
    /// waiting one goes when it had `keep`. The webhook's name is copied once, not per entry.
    pub(super) fn push(&mut self, entry: T, bytes: usize) {
        let name = (self.webhook)(&entry);
        let queue = match self.by_webhook.get_mut(name) {
            Some(queue) => queue,
            None => self.by_webhook.entry(name.to_owned()).or_default(),
        };
        if queue.len() == self.keep {
            if let Some((_, gone, _)) = queue.pop_front() {
                self.bytes -= gone;
            }
        } else {
            self.len += 1;
        }
        self.bytes += bytes;
        queue.push_back((self.next, bytes, entry));
        self.next += 1;
    }

    /// How many entries wait.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The body bytes the waiting entries hold.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether none waits.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every waiting entry, in order of arrival; nothing waits afterwards.
    pub(super) fn take(&mut self) -> Vec<T> {
        let mut all: Vec<(u64, usize, T)> = Vec::with_capacity(self.len);
        for (_, queue) in self.by_webhook.drain() {
            all.extend(queue);
        }
        all.sort_unstable_by_key(|(n, _, _)| *n);
        self.len = 0;
        self.bytes = 0;
        all.into_iter().map(|(_, _, entry)| entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn keeps_the_newest_per_webhook_in_arrival_order() {
        let mut pending = Pending::new(2, |e: &(&str, i32)| e.0);
        for (webhook, n) in [("a", 1), ("b", 2), ("a", 3), ("a", 4), ("c", 5), ("b", 6), ("a", 7)] {
            pending.push((webhook, n), n as usize * 10);
        }
        // a: 1 and 3 were pushed out by 4 and 7 (and their bytes with them); b and c kept theirs.
        assert_eq!((pending.len(), pending.bytes()), (5, 240));
        assert_eq!(pending.take(), vec![("b", 2), ("a", 4), ("c", 5), ("b", 6), ("a", 7)]);
        assert!(pending.is_empty());
        assert_eq!(pending.take(), Vec::new());
        // A webhook starts over after a write.
        assert_eq!(pending.bytes(), 0);
        pending.push(("a", 8), 1);
        assert_eq!((pending.len(), pending.bytes()), (1, 1));
        assert_eq!(pending.take(), vec![("a", 8)]);
    }

    #[test]
    fn a_flood_to_one_webhook_holds_keep_entries() {
        let mut pending = Pending::new(1000, |e: &(&str, i32)| e.0);
        for n in 0..100_000 {
            pending.push(("flooded", n), 100);
            assert!(pending.len() <= 1000 && pending.bytes() <= 100_000);
        }
        pending.push(("quiet", -1), 0);
        let written = pending.take();
        assert_eq!(written.len(), 1001);
        assert_eq!(written[0], ("flooded", 99_000), "the newest thousand of the flood, oldest first");
        assert_eq!(written[999..], [("flooded", 99_999), ("quiet", -1)]);
    }
}
