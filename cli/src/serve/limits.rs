//! The global budget of buffered request bodies: every body the service holds in memory (a
//! delivery's, a control-plane call's) is counted against one budget (`--body-budget-mib`), in
//! KiB, reserved before the bytes are read (the declared `Content-Length`, or in doubling steps
//! for a chunked body) and released when the request is done. Past the budget a new body waits
//! [`BUDGET_WAIT`] for room, then the sender gets 503 with `Retry-After`: many slow senders cost
//! them connections, not the service memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::BodyExt as _;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a body waits for room in the budget before it is refused with 503.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);
/// What `Retry-After` says when the budget (or another bound) is full, in seconds.
pub const RETRY_AFTER_SECS: u64 = 5;
/// The default budget, in MiB.
pub const DEFAULT_BODY_BUDGET_MIB: usize = 256;
/// What a chunked body (no `Content-Length`) reserves first.
const FIRST_CHUNK: usize = 64 * 1024;

/// The budget of buffered body bytes, shared by every request. Not first come, first served: a
/// small body that fits is never queued behind a large one that waits for room.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    used_kib: AtomicUsize,
    total_kib: usize,
    released: Notify,
}

impl Inner {
    fn try_take(&self, kib: usize) -> bool {
        self.used_kib
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + kib <= self.total_kib).then_some(used + kib)
            })
            .is_ok()
    }
}

/// Room reserved in the budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Inner>,
    kib: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.kib > 0 {
            self.budget.used_kib.fetch_sub(self.kib, Ordering::AcqRel);
            self.budget.released.notify_waiters();
        }
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the limit (413).
    TooLarge,
    /// No room in the budget within [`BUDGET_WAIT`] (503 with `Retry-After`).
    Busy,
    /// Not complete before the deadline (408).
    Timeout,
    /// The connection failed or the body was malformed (400).
    Broken,
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget {
            inner: Arc::new(Inner { used_kib: AtomicUsize::new(0), total_kib: kib(bytes), released: Notify::new() }),
        }
    }

    /// The bytes not reserved now.
    pub fn available_bytes(&self) -> usize {
        (self.inner.total_kib - self.inner.used_kib.load(Ordering::Acquire).min(self.inner.total_kib)) * 1024
    }

    /// Reserves room for `bytes` more in `reservation`, waiting until `until` at most.
    async fn grow(&self, reservation: &mut Reservation, bytes: usize, until: Instant) -> Result<(), BodyError> {
        let want = kib(bytes);
        if reservation.kib + want > self.inner.total_kib {
            return Err(BodyError::Busy);
        }
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            // Registered before the attempt, so that a release in between is not missed.
            released.as_mut().enable();
            if self.inner.try_take(want) {
                reservation.kib += want;
                return Ok(());
            }
            if tokio::time::timeout_at(until, released).await.is_err() {
                return Err(BodyError::Busy);
            }
        }
    }

    /// Reads `body` (at most `limit` bytes, until `deadline`) into one buffer, counted against
    /// the budget: `declared` (the `Content-Length`, already checked against `limit`) is reserved
    /// before the first byte is read, waiting [`BUDGET_WAIT`] at most; a body without one
    /// reserves in doubling steps as it arrives. The reservation lives as long as the caller
    /// holds the bytes.
    pub async fn read<B>(
        &self,
        mut body: B,
        limit: usize,
        declared: Option<u64>,
        deadline: Instant,
    ) -> Result<(Bytes, Reservation), BodyError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        let mut reservation = Reservation { budget: self.inner.clone(), kib: 0 };
        let first = match declared {
            Some(n) => usize::try_from(n).map_err(|_| BodyError::TooLarge)?,
            None => FIRST_CHUNK.min(limit),
        };
        if first > limit {
            return Err(BodyError::TooLarge);
        }
        self.grow(&mut reservation, first, Instant::now() + BUDGET_WAIT).await?;
        let mut buffer: Vec<u8> = Vec::with_capacity(first);
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(BodyError::Timeout),
                Ok(None) => break,
                Ok(Some(Err(_))) => return Err(BodyError::Broken),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            let needed = buffer.len() + data.len();
            if needed > limit {
                return Err(BodyError::TooLarge);
            }
            if needed > buffer.capacity() {
                // Grow to the double (or what is needed), never past the limit, and reserve the
                // difference first.
                let target = needed.max(buffer.capacity() * 2).min(limit);
                let more = target.saturating_sub(reservation.kib * 1024);
                if more > 0 {
                    let until = (Instant::now() + BUDGET_WAIT).min(deadline);
                    self.grow(&mut reservation, more, until).await?;
                }
                buffer.reserve_exact(target - buffer.len());
            }
            buffer.extend_from_slice(&data);
        }
        Ok((Bytes::from(buffer), reservation))
    }
}

impl Reservation {
    /// The KiB held.
    pub fn kib(&self) -> usize {
        self.kib
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[tokio::test]
    async fn a_body_reserves_and_releases() {
        let budget = BodyBudget::new(64 * 1024);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (bytes, held) = budget.read(Body::from(vec![7u8; 40_000]), 100_000, Some(40_000), deadline).await.unwrap();
        assert_eq!(bytes.len(), 40_000);
        assert_eq!(held.kib(), 40);
        assert_eq!(budget.available_bytes(), 24 * 1024);
        // No room for a second one of that size: refused after the wait.
        let started = std::time::Instant::now();
        let e = budget.read(Body::from(vec![7u8; 40_000]), 100_000, Some(40_000), deadline).await.unwrap_err();
        assert_eq!(e, BodyError::Busy);
        assert!(started.elapsed() >= BUDGET_WAIT - Duration::from_millis(50));
        drop(held);
        assert_eq!(budget.available_bytes(), 64 * 1024);
        // Chunked (no length): grows as it arrives, and a body over the limit is refused.
        let (bytes, held) = budget.read(Body::from(vec![1u8; 50_000]), 100_000, None, deadline).await.unwrap();
        assert_eq!((bytes.len(), held.kib() >= 49), (50_000, true));
        drop(held);
        let e = budget.read(Body::from(vec![1u8; 50_000]), 10_000, None, deadline).await.unwrap_err();
        assert_eq!(e, BodyError::TooLarge);
        assert_eq!(budget.available_bytes(), 64 * 1024, "nothing held after a refusal");
    }
}
