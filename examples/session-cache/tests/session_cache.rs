//! Tests of the session cache against a real Redis (`REDIS_URL`), and of
//! the `Session` aggregate's rules (no Redis needed).
//!
//! Each Redis test works under its own random key prefix and deletes its
//! keys when it ends, even if it fails, so tests run in parallel and leave
//! nothing behind.

use std::sync::Arc;
use std::time::Duration;

use composable_rust::prelude::*;
use composable_rust::redis::RedisProjectionStore;
use composable_rust::{
    AggregateRepository, InMemoryEventStore, ProjectionManager, SystemClock, TestClock,
};
use composable_rust_testing::fixtures::TestKeyPrefix;
use session_cache::projection::session_key;
use session_cache::{
    CurrentSession, SESSION_TTL, Session, SessionCache, SessionCommand, SessionError, SessionEvent,
    current_session,
};

const MINUTE: Duration = Duration::from_secs(60);

/// A session cache on a test key prefix (its keys are deleted when the
/// fixture is dropped), fed by an in-memory event store whose clock the
/// test controls.
struct Fixture {
    store: RedisProjectionStore,
    clock: TestClock,
    events: InMemoryEventStore,
    sessions: AggregateRepository<Session, InMemoryEventStore>,
    cache: ProjectionManager<SessionCache>,
    ttl: Duration,
    _prefix: TestKeyPrefix,
}

impl Fixture {
    /// Sessions live `ttl`; the event store's clock starts `ago` in the
    /// past, so a test can record events "minutes ago" without waiting.
    async fn new(ttl: Duration, ago: Duration) -> Self {
        let prefix = TestKeyPrefix::new();
        let store = RedisProjectionStore::connect(prefix.url(), prefix.as_str())
            .await
            .unwrap_or_else(|error| {
                panic!("cannot connect to REDIS_URL={}: {error}", prefix.url())
            });
        let clock = TestClock::starting_at(SystemClock.now() - ago);
        let events = InMemoryEventStore::new().with_clock(Arc::new(clock.clone()));
        Self {
            sessions: AggregateRepository::new(events.clone(), ()),
            cache: ProjectionManager::new(
                SessionCache { ttl },
                Arc::new(store.clone()),
                events.clone(),
            ),
            store,
            clock,
            events,
            ttl,
            _prefix: prefix,
        }
    }

    async fn execute(&self, id: &str, command: SessionCommand) {
        let stream = self.sessions.stream_id(id).unwrap();
        self.sessions.execute(&stream, command).await.unwrap();
    }

    async fn sign_in(&self, id: &str, user: &str) {
        let command = SessionCommand::SignIn {
            user: user.into(),
            device: "laptop".into(),
        };
        self.execute(id, command).await;
    }

    async fn catch_up(&self) {
        self.cache.catch_up().await.unwrap();
    }

    async fn session(&self, id: &str) -> Option<CurrentSession> {
        current_session(&self.store, id).await.unwrap()
    }

    /// The TTL Redis reports for the session's key.
    async fn ttl(&self, id: &str) -> Option<Duration> {
        self.store.ttl(&session_key(id)).await.unwrap()
    }
}

/// Moves the checkpoint back to the start, as a crash that lost it would:
/// a manager started afterwards delivers every event again.
async fn rewind(store: &RedisProjectionStore) {
    let mut tx = store.begin().await.unwrap();
    let start = composable_rust::Position::START;
    store
        .save_position(&mut tx, "session-cache", start)
        .await
        .unwrap();
    store.commit(tx).await.unwrap();
}

fn assert_between(ttl: Option<Duration>, low: Duration, high: Duration) {
    let ttl = ttl.expect("the key has a TTL");
    assert!(
        low < ttl && ttl <= high,
        "TTL {ttl:?} not in ({low:?}, {high:?}]"
    );
}

#[tokio::test]
async fn a_sign_in_is_cached_with_the_session_ttl() {
    let fx = Fixture::new(SESSION_TTL, Duration::ZERO).await;
    fx.sign_in("s1", "alice").await;
    fx.catch_up().await;

    let session = fx.session("s1").await.expect("a live session");
    assert_eq!(
        (session.user.as_str(), session.device.as_str()),
        ("alice", "laptop")
    );
    assert_between(fx.ttl("s1").await, fx.ttl - MINUTE, fx.ttl);
    assert!(session.expires_in <= fx.ttl);
    assert_eq!(fx.session("never-seen").await, None);
}

#[tokio::test]
async fn a_refresh_slides_the_expiry() {
    let fx = Fixture::new(SESSION_TTL, 20 * MINUTE).await;
    fx.sign_in("s1", "alice").await; // 20 minutes ago
    fx.clock.advance(20 * MINUTE); // now
    fx.catch_up().await;
    assert_between(fx.ttl("s1").await, 9 * MINUTE, 10 * MINUTE);

    fx.execute("s1", SessionCommand::Refresh).await;
    fx.catch_up().await;
    assert_between(fx.ttl("s1").await, 29 * MINUTE, 30 * MINUTE);
    let session = fx.session("s1").await.expect("still live");
    assert!(session.expires_in > 29 * MINUTE, "{session:?}");
}

#[tokio::test]
async fn signing_out_removes_the_session() {
    let fx = Fixture::new(SESSION_TTL, Duration::ZERO).await;
    fx.sign_in("s1", "alice").await;
    fx.sign_in("s2", "bob").await;
    fx.catch_up().await;
    fx.execute("s1", SessionCommand::SignOut).await;
    fx.catch_up().await;

    assert_eq!(fx.session("s1").await, None);
    assert!(!fx.store.exists(&session_key("s1")).await.unwrap());
    assert!(fx.session("s2").await.is_some(), "other sessions stay");
}

#[tokio::test]
async fn a_session_expires_when_its_ttl_runs_out() {
    let fx = Fixture::new(Duration::from_secs(1), Duration::ZERO).await;
    fx.sign_in("s1", "alice").await;
    fx.catch_up().await;
    assert_between(fx.ttl("s1").await, Duration::ZERO, Duration::from_secs(1));
    assert!(fx.session("s1").await.is_some());

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(fx.session("s1").await, None, "Redis deleted it");
    assert!(!fx.store.exists(&session_key("s1")).await.unwrap());
}

#[tokio::test]
async fn a_sign_in_older_than_the_ttl_is_not_cached() {
    // A rebuild or a late delivery must not revive a session that is over.
    let fx = Fixture::new(SESSION_TTL, 40 * MINUTE).await;
    fx.sign_in("s1", "carol").await; // 40 minutes ago
    fx.clock.advance(40 * MINUTE);
    fx.sign_in("s2", "alice").await; // now
    fx.catch_up().await;

    assert_eq!(fx.session("s1").await, None);
    assert!(!fx.store.exists(&session_key("s1")).await.unwrap());
    assert!(fx.session("s2").await.is_some());
}

#[tokio::test]
async fn delivering_every_event_again_changes_nothing() {
    // Redis delivers at least once; here every event is delivered twice.
    let fx = Fixture::new(SESSION_TTL, 20 * MINUTE).await;
    fx.sign_in("s1", "alice").await;
    fx.sign_in("s2", "bob").await;
    fx.sign_in("s3", "carol").await;
    fx.clock.advance(20 * MINUTE);
    fx.execute("s1", SessionCommand::Refresh).await;
    fx.execute("s2", SessionCommand::SignOut).await;
    fx.catch_up().await;
    let ids = ["s1", "s2", "s3"];
    let mut before = Vec::new();
    for id in ids {
        before.push(fx.session(id).await);
    }

    rewind(&fx.store).await;
    let restarted = ProjectionManager::new(
        SessionCache { ttl: fx.ttl },
        Arc::new(fx.store.clone()),
        fx.events.clone(),
    );
    assert_eq!(
        restarted.catch_up().await.unwrap(),
        5,
        "all delivered again"
    );

    for (id, before) in ids.into_iter().zip(before) {
        let after = fx.session(id).await;
        assert_eq!(
            after.as_ref().map(|s| (&s.user, &s.device)),
            before.as_ref().map(|s| (&s.user, &s.device)),
            "{id}"
        );
        if let (Some(before), Some(after)) = (before, after) {
            // The same expiry time: the TTL only went down by the time the
            // redelivery took.
            let drift = before.expires_in.abs_diff(after.expires_in);
            assert!(
                drift < Duration::from_secs(1),
                "{id}: {before:?} vs {after:?}"
            );
        }
    }
    assert!(fx.session("s2").await.is_none(), "signed out stays out");
}

#[tokio::test]
async fn a_rebuild_gives_the_same_read_model() {
    let fx = Fixture::new(SESSION_TTL, Duration::ZERO).await;
    fx.sign_in("s1", "alice").await;
    fx.sign_in("s2", "bob").await;
    fx.execute("s2", SessionCommand::SignOut).await;
    fx.catch_up().await;

    assert_eq!(fx.cache.rebuild().await.unwrap(), 3);
    assert_eq!(fx.session("s1").await.map(|s| s.user), Some("alice".into()));
    assert_eq!(fx.session("s2").await, None);
}

// The aggregate's rules: pure functions, no Redis.

fn signed_in() -> SessionEvent {
    SessionEvent::SignedIn {
        user: "alice".into(),
        device: "laptop".into(),
    }
}

#[test]
fn an_active_session_can_be_refreshed_and_signed_out() {
    AggregateTest::<Session>::new(())
        .given([signed_in()])
        .when(SessionCommand::Refresh)
        .then_events([SessionEvent::SessionRefreshed]);
    let after = AggregateTest::<Session>::new(())
        .given([signed_in(), SessionEvent::SessionRefreshed])
        .when(SessionCommand::SignOut)
        .then_events([SessionEvent::SignedOut]);
    assert_eq!(after, Session::Ended);
}

#[test]
fn a_session_signs_in_once() {
    AggregateTest::<Session>::new(())
        .given([signed_in()])
        .when(SessionCommand::SignIn {
            user: "mallory".into(),
            device: "laptop".into(),
        })
        .then_rejected(SessionError::AlreadyStarted);
}

#[test]
fn a_session_that_is_not_active_cannot_be_refreshed_or_signed_out() {
    AggregateTest::<Session>::new(())
        .when(SessionCommand::Refresh)
        .then_rejected(SessionError::NotActive);
    AggregateTest::<Session>::new(())
        .given([signed_in(), SessionEvent::SignedOut])
        .when(SessionCommand::SignOut)
        .then_rejected(SessionError::NotActive);
}
