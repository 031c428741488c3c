//! [`Bulkhead`]: bounds how many calls to one dependency run at once, so a
//! slow dependency ties up a few tasks instead of all of them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ResilienceError;
use super::metrics::record_bulkhead_rejection;

/// At most `max_concurrent` calls at once; up to `max_queued` more wait for
/// a slot (in arrival order), and any call beyond that is refused at once
/// with [`ResilienceError::BulkheadFull`]. Cloning gives another handle to
/// the same bulkhead. Put a [`timeout`](super::timeout) around
/// [`acquire`](Self::acquire) or [`run`](Self::run) to bound the wait too.
///
/// # Examples
///
/// ```
/// use composable_rust_core::resilience::{Bulkhead, ResilienceError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bulkhead = Bulkhead::new("payment-gateway", 1);
/// let busy = bulkhead.acquire().await.unwrap();
/// assert_eq!(bulkhead.in_flight(), 1);
/// assert!(matches!(bulkhead.run(async { 42 }).await, Err(ResilienceError::BulkheadFull { .. })));
/// drop(busy);
/// assert_eq!(bulkhead.run(async { 42 }).await.unwrap(), 42);
/// # }
/// ```
#[derive(Clone)]
pub struct Bulkhead {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    max_concurrent: usize,
    max_queued: usize,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
}

impl Bulkhead {
    /// A bulkhead named `name` running at most `max_concurrent` calls at
    /// once (at least 1), refusing the others (no queue).
    pub fn new(name: impl Into<String>, max_concurrent: usize) -> Self {
        Self::builder(name, max_concurrent).build()
    }

    /// Configures a bulkhead named `name` running at most `max_concurrent`
    /// calls at once (at least 1).
    pub fn builder(name: impl Into<String>, max_concurrent: usize) -> BulkheadBuilder {
        BulkheadBuilder {
            name: name.into(),
            max_concurrent: max_concurrent.max(1),
            max_queued: 0,
        }
    }

    /// The bulkhead's name (the `bulkhead` label of its metric).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Calls it runs at once.
    pub fn max_concurrent(&self) -> usize {
        self.shared.max_concurrent
    }

    /// Calls it lets wait for a slot.
    pub fn max_queued(&self) -> usize {
        self.shared.max_queued
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.shared.max_concurrent - self.shared.slots.available_permits()
    }

    /// Calls waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// A slot, at once if one is free, else after waiting in the queue.
    /// The slot is free again when the permit is dropped.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::BulkheadFull`] when every slot is busy and the
    /// queue is full.
    pub async fn acquire(&self) -> Result<BulkheadPermit, ResilienceError> {
        let shared = &self.shared;
        if let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() {
            return Ok(BulkheadPermit { _slot: permit });
        }
        if shared.queued.fetch_add(1, Ordering::SeqCst) >= shared.max_queued {
            shared.queued.fetch_sub(1, Ordering::SeqCst);
            record_bulkhead_rejection(&shared.name);
            return Err(ResilienceError::BulkheadFull {
                bulkhead: shared.name.clone(),
                max_concurrent: shared.max_concurrent,
                max_queued: shared.max_queued,
            });
        }
        // Leaves the queue however the wait ends, cancellation included.
        let _in_queue = QueuePlace(&shared.queued);
        let permit = Arc::clone(&shared.slots)
            .acquire_owned()
            .await
            .expect("the bulkhead's semaphore is never closed");
        Ok(BulkheadPermit { _slot: permit })
    }

    /// Runs `future` in a slot.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::BulkheadFull`], and then `future` is not run.
    pub async fn run<F: Future>(&self, future: F) -> Result<F::Output, ResilienceError> {
        let _slot = self.acquire().await?;
        Ok(future.await)
    }
}

impl std::fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name())
            .field("max_concurrent", &self.max_concurrent())
            .field("max_queued", &self.max_queued())
            .field("in_flight", &self.in_flight())
            .field("queued", &self.queued())
            .finish()
    }
}

/// Settings of a [`Bulkhead`]; from [`Bulkhead::builder`].
#[derive(Debug)]
pub struct BulkheadBuilder {
    name: String,
    max_concurrent: usize,
    max_queued: usize,
}

impl BulkheadBuilder {
    /// Calls that may wait for a slot when all are busy (default 0: refuse
    /// at once).
    #[must_use]
    pub fn with_max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued;
        self
    }

    /// The bulkhead.
    pub fn build(self) -> Bulkhead {
        Bulkhead {
            shared: Arc::new(Shared {
                name: self.name,
                max_concurrent: self.max_concurrent,
                max_queued: self.max_queued,
                slots: Arc::new(Semaphore::new(self.max_concurrent)),
                queued: AtomicUsize::new(0),
            }),
        }
    }
}

/// A slot of a [`Bulkhead`], free again when dropped.
#[derive(Debug)]
#[must_use = "the slot is freed as soon as the permit is dropped"]
pub struct BulkheadPermit {
    _slot: OwnedSemaphorePermit,
}

/// A caller's place in a bulkhead's queue.
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
