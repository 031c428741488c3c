//! The one runner of the generated conformance tests: a fresh
//! multi-threaded tokio runtime per check, on a thread of its own, and a
//! deadline, so a check that hangs (a backend call that never returns, a
//! client whose drop waits for a server, a lost wake-up) fails with a
//! message naming the deadline instead of stalling the whole test run.

use std::future::Future;
use std::panic::resume_unwind;
use std::sync::mpsc;
use std::time::Duration;

/// How long one conformance check may take. The slowest checks (a Kafka
/// consumer group rebalancing several times) take well under a minute on
/// a busy two-core machine; a check still running after this is stuck.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(240);

/// How long a finished check's runtime waits for blocking work it left
/// behind before it is dropped anyway: dropping a tokio runtime otherwise
/// waits for that work for as long as it takes.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(5);

/// Runs the future `check` makes on a fresh multi-threaded tokio runtime,
/// on a thread of its own, and panics if it has not finished within
/// `deadline`. A panic inside the check is passed on as it is.
///
/// The test's thread only waits: a check stuck in a blocking call holds
/// its own thread, and the deadline still fires (the stuck thread is left
/// behind; the test process ends it). `check` makes the future on that
/// thread, so the future need not be `Send`.
pub(crate) fn run_check<F>(deadline: Duration, check: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = ()>,
{
    let (done, finished) = mpsc::channel();
    let runner = std::thread::Builder::new()
        .name("conformance-check".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .expect("a tokio runtime for the conformance test");
            // Dropped on the way out, a panic included: tells the waiting
            // thread that the check is over either way.
            let _done = done;
            runtime.block_on(check());
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        })
        .expect("a thread for the conformance check");
    match finished.recv_timeout(deadline) {
        // The sender was dropped: the check returned or panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) | Ok(()) => {
            if let Err(panic) = runner.join() {
                resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "the check did not finish within {deadline:?}: something it awaits never \
             completes (run it alone with RUST_LOG=debug to see where it stops)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::panic::catch_unwind;

    use super::*;

    #[test]
    fn a_check_that_finishes_passes() {
        run_check(Duration::from_secs(5), || async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        });
    }

    #[test]
    fn a_hanging_check_fails_at_its_deadline_even_with_blocking_work_stuck() {
        let started = std::time::Instant::now();
        let failure = catch_unwind(|| {
            run_check(Duration::from_millis(200), || async {
                // Blocking work that outlives the check, as a stuck client
                // call would: the runner must not wait for it.
                let _stuck = tokio::task::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_secs(30));
                });
                std::future::pending::<()>().await;
            });
        })
        .expect_err("a hanging check fails");
        let message = failure
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains("did not finish within 200ms"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn a_check_stuck_in_a_blocking_call_fails_at_its_deadline() {
        let failure = catch_unwind(|| {
            run_check(Duration::from_millis(200), || async {
                // Blocks its worker thread, as a client's blocking drop would.
                std::thread::sleep(Duration::from_secs(30));
            });
        })
        .expect_err("a stuck check fails");
        let message = failure
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains("did not finish within 200ms"), "{message}");
    }

    #[test]
    fn a_failing_check_passes_its_panic_on() {
        let failure = catch_unwind(|| {
            run_check(Duration::from_secs(5), || async {
                panic!("the store lost an event");
            });
        })
        .expect_err("a failing check fails");
        assert_eq!(
            failure.downcast_ref::<&str>(),
            Some(&"the store lost an event")
        );
    }
}
