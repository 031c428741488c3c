//! The worker's side of the bus: a consumer that hands each message to the
//! transfer saga and acknowledges it once the saga has handled it.

use std::time::Duration;

use composable_rust::EventBusError;
use composable_rust::SagaRuntime;
use composable_rust::prelude::*;
use composable_rust::saga::Handled;

/// Receives up to 100 messages (waiting up to `wait` for the first one),
/// hands each to `runtime`, and acknowledges those it handled. Returns
/// what the saga did with each.
///
/// A message the saga could not handle (the event store is down, say) is
/// not acknowledged: the bus delivers it again after the subscription's
/// visibility timeout, and moves it to the dead-letter topic once it has
/// been delivered `max_deliveries` times.
pub async fn deliver<S: Saga>(
    runtime: &SagaRuntime<S>,
    subscription: &mut dyn Subscription,
    wait: Duration,
) -> Result<Vec<Handled>, EventBusError> {
    let messages = subscription.receive(100, wait).await?;
    let mut handled = Vec::with_capacity(messages.len());
    for message in &messages {
        match runtime.handle(&message.event).await {
            Ok(outcome) => {
                subscription.ack(message).await?;
                handled.push(outcome);
            }
            Err(error) => eprintln!(
                "{} (delivery {}) not handled, it will come back: {error}",
                message.event.event_id, message.deliveries
            ),
        }
    }
    Ok(handled)
}
