//! [`SagaSteps`]: the steps a saga has taken and what undoes each of them.

use serde::{Deserialize, Serialize};

/// The steps of a saga, in the order they started, each with the command
/// that undoes it (its **compensation**). Keep one in the saga's state and
/// update it in [`Saga::apply`](super::Saga::apply); when a step fails,
/// [`compensations`](Self::compensations) lists what to send, most recent
/// step first.
///
/// A step is *in flight* from [`start`](Self::start) until
/// [`complete`](Self::complete) or [`fail`](Self::fail). A failed step did
/// nothing, so it is dropped and never compensated. A step that timed out
/// may or may not have happened; compensate it too with
/// [`compensations_with_in_flight`](Self::compensations_with_in_flight) (the
/// receiver of a compensation for something that never happened does
/// nothing).
///
/// ```
/// use composable_rust_core::saga::SagaSteps;
///
/// let mut steps = SagaSteps::new();
/// steps.start("inventory", Some("release inventory"));
/// steps.complete("inventory");
/// steps.start("payment", Some("refund payment"));
/// steps.complete("payment");
/// steps.start("shipping", None);
///
/// // Shipping failed: undo payment, then inventory.
/// assert_eq!(steps.compensations(), vec!["refund payment", "release inventory"]);
/// steps.fail("shipping");
/// assert_eq!(steps.completed(), vec!["inventory", "payment"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaSteps<C> {
    steps: Vec<Step<C>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Step<C> {
    name: String,
    compensation: Option<C>,
    completed: bool,
}

impl<C> SagaSteps<C> {
    /// No steps yet.
    pub fn new() -> Self {
        Self { steps: Vec::new() }
    }

    /// Starts step `name`, undone by `compensation` (`None` for a step with
    /// nothing to undo). Starting a step that already started does nothing.
    pub fn start(&mut self, name: impl Into<String>, compensation: Option<C>) {
        let name = name.into();
        if self.position(&name).is_none() {
            self.steps.push(Step {
                name,
                compensation,
                completed: false,
            });
        }
    }

    /// Marks step `name` as completed.
    pub fn complete(&mut self, name: &str) {
        if let Some(index) = self.position(name) {
            self.steps[index].completed = true;
        }
    }

    /// Step `name` failed and did nothing: forget it.
    pub fn fail(&mut self, name: &str) {
        if let Some(index) = self.position(name) {
            self.steps.remove(index);
        }
    }

    /// The compensations of the completed steps, most recent first.
    pub fn compensations(&self) -> Vec<C>
    where
        C: Clone,
    {
        self.steps
            .iter()
            .rev()
            .filter(|step| step.completed)
            .filter_map(|step| step.compensation.clone())
            .collect()
    }

    /// The compensations of every step that started and did not fail,
    /// in flight or completed, most recent first: after a timeout, when the
    /// step in flight may have happened.
    pub fn compensations_with_in_flight(&self) -> Vec<C>
    where
        C: Clone,
    {
        self.steps
            .iter()
            .rev()
            .filter_map(|step| step.compensation.clone())
            .collect()
    }

    /// The names of the completed steps, in the order they started.
    pub fn completed(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|step| step.completed)
            .map(|step| step.name.as_str())
            .collect()
    }

    /// The names of the steps in flight (started, neither completed nor
    /// failed), in the order they started.
    pub fn in_flight(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|step| !step.completed)
            .map(|step| step.name.as_str())
            .collect()
    }

    /// Whether step `name` started and did not fail.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|step| step.name == name)
    }
}

impl<C> Default for SagaSteps<C> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensations_run_in_reverse_order_of_completion() {
        let mut steps = SagaSteps::new();
        steps.start("a", Some(1));
        steps.complete("a");
        steps.start("b", None);
        steps.complete("b");
        steps.start("c", Some(3));
        steps.complete("c");
        steps.start("d", Some(4));
        assert_eq!(steps.compensations(), vec![3, 1]);
        assert_eq!(steps.compensations_with_in_flight(), vec![4, 3, 1]);
        assert_eq!(steps.in_flight(), vec!["d"]);
        steps.fail("d");
        assert_eq!(steps.compensations_with_in_flight(), vec![3, 1]);
        assert!(!steps.contains("d"));
    }

    #[test]
    fn starting_twice_keeps_the_first() {
        let mut steps = SagaSteps::new();
        steps.start("a", Some(1));
        steps.start("a", Some(2));
        steps.complete("a");
        assert_eq!(steps.compensations(), vec![1]);
    }

    #[test]
    fn steps_survive_serde() {
        let mut steps = SagaSteps::new();
        steps.start("a", Some("undo a".to_owned()));
        let json = serde_json::to_string(&steps).unwrap();
        let back: SagaSteps<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, steps);
    }
}
