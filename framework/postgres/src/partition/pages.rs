//! [`SharedPages`]: the global stream as the partitions of one worker read
//! it. Each partition's runner reads the whole stream and skips the other
//! partitions' events, so a worker holding eight partitions would fetch
//! every page eight times; through `SharedPages` it fetches a page once and
//! hands copies to the other runners asking for the same page.
//!
//! Only *full* pages are kept (as many events as asked for): an event store
//! returns only final events, in position order, so the `limit` events
//! after a position never change once they are all there. A shorter page
//! reached the head of the stream and may grow; it is read again next
//! time. Runners asking for a page at the same time share one fetch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use composable_rust_core::projection::EventSource;
use composable_rust_core::{EventStoreError, Position, StoredEvent};
use tokio::sync::{OnceCell, watch};

/// How many full pages a worker keeps: enough for runners a few pages
/// apart to share, small enough to bound memory (pages of a worker's batch
/// size, 500 events by default).
const KEPT_PAGES: usize = 16;

/// One page: `limit` events after `after`, fetched once.
struct Page {
    after: Position,
    limit: usize,
    events: OnceCell<Vec<StoredEvent>>,
}

/// The source every partition runner of one worker reads through (see the
/// module documentation). Clones share the same pages.
#[derive(Clone)]
pub(super) struct SharedPages {
    source: Arc<dyn EventSource>,
    pages: Arc<Mutex<VecDeque<Arc<Page>>>>,
}

impl SharedPages {
    /// Shares `source`'s pages.
    pub(super) fn new(source: impl EventSource) -> Self {
        Self {
            source: Arc::new(source),
            pages: Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_PAGES))),
        }
    }

    /// The page for `(after, limit)`: the one kept or being fetched, or a
    /// new one (the oldest is dropped beyond [`KEPT_PAGES`]).
    fn page(&self, after: Position, limit: usize) -> Arc<Page> {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(page) = pages
            .iter()
            .find(|page| page.after == after && page.limit == limit)
        {
            return Arc::clone(page);
        }
        let page = Arc::new(Page {
            after,
            limit,
            events: OnceCell::new(),
        });
        if pages.len() == KEPT_PAGES {
            pages.pop_front();
        }
        pages.push_back(Arc::clone(&page));
        page
    }

    /// Forgets `page`: it was short (the head of the stream) or failed.
    fn forget(&self, page: &Arc<Page>) {
        self.pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|kept| !Arc::ptr_eq(kept, page));
    }
}

#[async_trait]
impl EventSource for SharedPages {
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        let page = self.page(after, limit);
        let fetched = page
            .events
            .get_or_try_init(|| self.source.read_after(after, limit))
            .await;
        match fetched {
            Ok(events) => {
                if events.len() < limit {
                    self.forget(&page);
                }
                Ok(events.clone())
            }
            Err(error) => {
                self.forget(&page);
                Err(error)
            }
        }
    }

    async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
        self.source.count_after(after).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.source.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use composable_rust_core::{
        EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, StreamId,
    };

    use super::*;

    /// Counts the reads that reach the store (clones share the count).
    #[derive(Clone)]
    struct Counting {
        store: InMemoryEventStore,
        reads: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl EventSource for Counting {
        async fn read_after(
            &self,
            after: Position,
            limit: usize,
        ) -> Result<Vec<StoredEvent>, EventStoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.store.read_all(after, limit).await
        }

        async fn count_after(&self, after: Position) -> Result<u64, EventStoreError> {
            EventStore::count_after(&self.store, after).await
        }

        fn subscribe(&self) -> watch::Receiver<u64> {
            EventStore::subscribe(&self.store)
        }
    }

    async fn store_with(events: usize) -> Counting {
        let store = InMemoryEventStore::new();
        for n in 0..events {
            let stream = StreamId::new(format!("s-{n}")).unwrap();
            let event = NewEvent::new("Happened", serde_json::json!({ "n": n }));
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event])
                .await
                .unwrap();
        }
        Counting {
            store,
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }

    #[tokio::test]
    async fn a_full_page_is_fetched_once_for_every_reader() {
        let counting = store_with(10).await;
        let pages = SharedPages::new(counting.clone());
        let first = pages.read_after(Position::START, 4).await.unwrap();
        let again = pages.read_after(Position::START, 4).await.unwrap();
        assert_eq!(first.len(), 4);
        assert_eq!(
            first.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            again.iter().map(|e| e.event_id).collect::<Vec<_>>()
        );
        assert_eq!(counting.reads.load(Ordering::SeqCst), 1, "one fetch");
        // Another limit, or another position, is another page.
        pages.read_after(Position::START, 3).await.unwrap();
        pages.read_after(first[3].position, 4).await.unwrap();
        assert_eq!(counting.reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_short_page_is_read_again_and_sees_new_events() {
        let counting = store_with(2).await;
        let pages = SharedPages::new(counting.clone());
        assert_eq!(pages.read_after(Position::START, 4).await.unwrap().len(), 2);
        let stream = StreamId::new("late").unwrap();
        let event = NewEvent::new("Happened", serde_json::json!({}));
        counting
            .store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        assert_eq!(pages.read_after(Position::START, 4).await.unwrap().len(), 3);
        assert_eq!(counting.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn readers_at_the_same_time_share_one_fetch() {
        let counting = store_with(8).await;
        let pages = Arc::new(SharedPages::new(counting.clone()));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let pages = Arc::clone(&pages);
                tokio::spawn(async move { pages.read_after(Position::START, 8).await })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap().unwrap().len(), 8);
        }
        assert_eq!(counting.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn only_a_bounded_number_of_pages_is_kept() {
        let counting = store_with(KEPT_PAGES + 2).await;
        let pages = SharedPages::new(counting.clone());
        let all = counting.store.read_all(Position::START, 100).await.unwrap();
        for event in &all[..=KEPT_PAGES] {
            pages.read_after(event.position, 1).await.unwrap();
        }
        assert_eq!(pages.pages.lock().unwrap().len(), KEPT_PAGES);
        // The first page was dropped: reading it fetches again.
        let before = counting.reads.load(Ordering::SeqCst);
        pages.read_after(all[0].position, 1).await.unwrap();
        assert_eq!(counting.reads.load(Ordering::SeqCst), before + 1);
    }
}
