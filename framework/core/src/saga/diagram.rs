//! [`SagaMap`]: a saga's steps and compensations, declared as a value, so
//! they can be drawn (a mermaid flowchart) and checked against what the
//! saga's code does ([`SagaMap::verify`]).
//!
//! A saga's steps exist only as code: `react` decides the next command,
//! `apply` starts and completes [`SagaSteps`](super::SagaSteps). A diagram
//! needs them as data, so a saga that wants one declares them: for each
//! step, in order, the command that starts it, the inputs that mean it
//! succeeded or failed, the timeout that gives up on it, and the command
//! that undoes it. A step may also be a *wait* ([`SagaMapStep::wait`]):
//! the saga sends nothing and waits for an input (a payment); and an input
//! may *stop* a step ([`SagaMapStep::with_stop`]): the saga ends
//! completed, sending nothing more and undoing nothing (the order was
//! cancelled elsewhere). Declaring is optional ([`DeclaredSaga`]); nothing
//! at run time reads the map.
//!
//! A declaration written beside the code can drift from it, so
//! [`SagaMap::verify`] runs the saga (its pure `react`, `on_timeout` and
//! `apply`, no runtime) along every path the map draws (each step
//! succeeding, each failing, each timing out, each stopped) and compares
//! the commands it sends and how it ends with what the map says. Call it
//! in a test.

use std::fmt::Write as _;

use chrono::DateTime;
use serde::Serialize;

use super::{Saga, SagaContext, SagaError, SagaId, SagaOutcome};

/// A saga that declares its steps and compensations, for diagrams (`ops
/// saga graph`) and for checking the declaration against the code.
///
/// # Examples
///
/// The `Reminder` saga of [`Saga`]'s example, declared, and the declaration
/// checked against its code:
///
/// ```
/// # use composable_rust_core::saga::{Reaction, Routed, Saga, SagaContext, SagaError, SagaId};
/// # use composable_rust_core::{Event, StoredEvent};
/// # use serde::{Deserialize, Serialize};
/// #
/// # /// Sends one reminder per order, and ends when it was delivered.
/// # struct Reminder;
/// #
/// # #[derive(Debug, Clone, PartialEq)]
/// # enum Input { Ordered, Notified }
/// #
/// # #[derive(Debug, Clone, Serialize, Deserialize)]
/// # enum Recorded { Started, Done }
/// # impl Event for Recorded {}
/// #
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # enum Command { Notify }
/// #
/// # impl Saga for Reminder {
/// #     const KIND: &'static str = "reminder";
/// #     type State = bool; // started?
/// #     type Input = Input;
/// #     type Event = Recorded;
/// #     type Command = Command;
/// #
/// #     fn route(&self, event: &StoredEvent) -> Result<Option<Routed<Input>>, SagaError> {
/// #         let input = match event.event_type.as_str() {
/// #             "Ordered" => Input::Ordered,
/// #             "Notified" => Input::Notified,
/// #             _ => return Ok(None),
/// #         };
/// #         Ok(Some(Routed::new(SagaId::new(event.stream_id.as_str())?, input)))
/// #     }
/// #
/// #     fn react(&self, started: &bool, input: Input, _: &SagaContext) -> Reaction<Self> {
/// #         match input {
/// #             Input::Ordered if !started => Reaction::new().record(Recorded::Started).send(Command::Notify),
/// #             Input::Notified if *started => Reaction::new().record(Recorded::Done).complete(),
/// #             _ => Reaction::new(), // repeated or late: nothing to do
/// #         }
/// #     }
/// #
/// #     fn apply(started: &mut bool, event: &Recorded) {
/// #         *started = matches!(event, Recorded::Started);
/// #     }
/// # }
/// use composable_rust_core::saga::{DeclaredSaga, SagaMap, SagaMapStep};
///
/// impl DeclaredSaga for Reminder {
///     fn map() -> Result<SagaMap, SagaError> {
///         SagaMap::builder(Self::KIND, "Ordered")
///             .with_step(SagaMapStep::new("notify", "Notify").with_success("Notified"))
///             .build()
///     }
/// }
///
/// # fn main() -> Result<(), SagaError> {
/// let map = Reminder::map()?;
/// map.verify(&Reminder, |input| match input {
///     "Ordered" => Input::Ordered,
///     _ => Input::Notified,
/// })?;
/// assert!(map.to_mermaid().starts_with("flowchart TD"));
/// # Ok(())
/// # }
/// ```
pub trait DeclaredSaga: Saga {
    /// The saga's steps, in order, with their compensations: usually
    /// [`SagaMap::builder`] through [`build`](SagaMapBuilder::build).
    ///
    /// # Errors
    ///
    /// [`SagaError::InvalidMap`] when the declaration is not a saga (see
    /// [`SagaMapBuilder::build`]).
    fn map() -> Result<SagaMap, SagaError>;
}

/// One step of a [`SagaMap`]: the command that starts it (none for a
/// [wait](Self::wait)), the inputs that end it, and the command that undoes
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaMapStep {
    name: String,
    command: Option<String>,
    succeeds_on: Vec<String>,
    fails_on: Vec<String>,
    stopped_by: Vec<String>,
    timeout: Option<String>,
    compensation: Option<String>,
}

impl SagaMapStep {
    /// Step `name` (the name the saga gives [`SagaSteps::start`]), started
    /// by sending `command` (the command's variant name).
    ///
    /// [`SagaSteps::start`]: super::SagaSteps::start
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            command: Some(command.into()),
            ..Self::wait(name)
        }
    }

    /// Step `name` that sends nothing: the saga waits for one of its
    /// inputs (a payment), or for its timeout. It has nothing to undo, so
    /// it takes no compensation ([`SagaMapBuilder::build`] refuses one).
    pub fn wait(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            command: None,
            succeeds_on: Vec::new(),
            fails_on: Vec::new(),
            stopped_by: Vec::new(),
            timeout: None,
            compensation: None,
        }
    }

    /// The input (by name) that says the step succeeded; call again for
    /// another.
    #[must_use]
    pub fn with_success(mut self, input: impl Into<String>) -> Self {
        self.succeeds_on.push(input.into());
        self
    }

    /// The input that says the step failed and did nothing: the steps
    /// completed before it are compensated. Call again for another.
    #[must_use]
    pub fn with_failure(mut self, input: impl Into<String>) -> Self {
        self.fails_on.push(input.into());
        self
    }

    /// An input that stops the saga at this step, as completed: nothing
    /// more is sent (no completion command) and nothing is undone (the
    /// order was cancelled by someone else). Call again for another.
    #[must_use]
    pub fn with_stop(mut self, input: impl Into<String>) -> Self {
        self.stopped_by.push(input.into());
        self
    }

    /// The timeout that gives up on the step. The step may have happened,
    /// so it is compensated too, with the steps before it.
    #[must_use]
    pub fn with_timeout(mut self, name: impl Into<String>) -> Self {
        self.timeout = Some(name.into());
        self
    }

    /// The command that undoes the step.
    #[must_use]
    pub fn with_compensation(mut self, command: impl Into<String>) -> Self {
        self.compensation = Some(command.into());
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command that starts the step; `None` for a wait.
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref()
    }
}

/// A saga's declared steps and compensations: what its flowchart shows.
///
/// ```
/// use composable_rust_core::saga::{SagaMap, SagaMapStep};
///
/// let map = SagaMap::builder("checkout", "OrderPlaced")
///     .with_step(
///         SagaMapStep::new("inventory", "ReserveInventory")
///             .with_success("InventoryReserved")
///             .with_failure("InventoryRejected")
///             .with_compensation("ReleaseInventory"),
///     )
///     .with_step(
///         SagaMapStep::new("payment", "ChargePayment")
///             .with_success("PaymentCharged")
///             .with_failure("PaymentDeclined"),
///     )
///     .with_completion("ConfirmOrder")
///     .with_cancellation("CancelOrder")
///     .build()
///     .unwrap();
/// let chart = map.to_mermaid();
/// assert!(chart.starts_with("flowchart TD\n"));
/// assert!(chart.contains("s2 -.->|\"PaymentDeclined\"| u1\n"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaMap {
    kind: String,
    trigger: String,
    steps: Vec<SagaMapStep>,
    completion: Vec<String>,
    cancellation: Vec<String>,
}

/// Builds a [`SagaMap`]; from [`SagaMap::builder`].
#[derive(Debug, Clone)]
pub struct SagaMapBuilder {
    map: SagaMap,
}

impl SagaMapBuilder {
    /// Adds the next step.
    #[must_use]
    pub fn with_step(mut self, step: SagaMapStep) -> Self {
        self.map.steps.push(step);
        self
    }

    /// A command sent when the last step succeeded (confirm the order);
    /// call again for another.
    #[must_use]
    pub fn with_completion(mut self, command: impl Into<String>) -> Self {
        self.map.completion.push(command.into());
        self
    }

    /// A command sent after the compensations, when the saga gave up
    /// (cancel the order); call again for another.
    #[must_use]
    pub fn with_cancellation(mut self, command: impl Into<String>) -> Self {
        self.map.cancellation.push(command.into());
        self
    }

    /// The map.
    ///
    /// # Errors
    ///
    /// [`SagaError::InvalidMap`] (`CR-E0035`) for a map without steps,
    /// with two steps of one name, with a step without a success input,
    /// or with a wait step that declares a compensation.
    pub fn build(self) -> Result<SagaMap, SagaError> {
        let map = self.map;
        let invalid = |reason: String| SagaError::InvalidMap {
            kind: map.kind.clone(),
            reason,
        };
        if map.steps.is_empty() {
            return Err(invalid("it declares no step".into()));
        }
        for (index, step) in map.steps.iter().enumerate() {
            if map.steps[..index].iter().any(|s| s.name == step.name) {
                return Err(invalid(format!("it declares step `{}` twice", step.name)));
            }
            if step.succeeds_on.is_empty() {
                return Err(invalid(format!(
                    "step `{}` declares no input that says it succeeded",
                    step.name
                )));
            }
            if step.command.is_none() && step.compensation.is_some() {
                return Err(invalid(format!(
                    "step `{}` waits (sends nothing), so it has nothing to undo: \
                     it takes no compensation",
                    step.name
                )));
            }
        }
        Ok(map)
    }
}

/// A path through the map: what happens at which step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every step succeeds.
    Completed,
    /// Step `k` fails with its failure input `i`.
    Failed(usize, usize),
    /// Step `k` times out.
    TimedOut(usize),
    /// Step `k` is stopped by its stop input `i`.
    Stopped(usize, usize),
}

impl SagaMap {
    /// A map of the saga kind `kind` (its [`Saga::KIND`]), started by the
    /// input `trigger`.
    pub fn builder(kind: impl Into<String>, trigger: impl Into<String>) -> SagaMapBuilder {
        SagaMapBuilder {
            map: Self {
                kind: kind.into(),
                trigger: trigger.into(),
                steps: Vec::new(),
                completion: Vec::new(),
                cancellation: Vec::new(),
            },
        }
    }

    /// The saga kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[SagaMapStep] {
        &self.steps
    }

    /// Whether the saga can end compensated (some step can fail or time
    /// out).
    fn can_fail(&self) -> bool {
        self.steps
            .iter()
            .any(|step| !step.fails_on.is_empty() || step.timeout.is_some())
    }

    /// Where the compensation chain is entered when step `k` fails
    /// (`inclusive`: when it times out, so it is undone too): the node of
    /// the nearest step at or before it with a compensation, else the end.
    fn undo_from(&self, k: usize, inclusive: bool) -> String {
        let last = if inclusive { k + 1 } else { k };
        self.steps[..last]
            .iter()
            .rposition(|step| step.compensation.is_some())
            .map_or_else(|| "compensated".to_owned(), |i| format!("u{}", i + 1))
    }

    /// The map as a mermaid flowchart: the steps top to bottom with the
    /// inputs that move between them (solid arrows), and the failures and
    /// timeouts (dotted) into the chain of compensations, most recent
    /// first. A wait step is a parallelogram (it sends nothing); stop
    /// inputs are solid arrows to a `stopped` end.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        let line = |out: &mut String, text: String| {
            out.push_str("    ");
            out.push_str(&text);
            out.push('\n');
        };
        line(&mut out, format!("start([\"{}\"])", label(&self.trigger)));
        for (i, step) in self.steps.iter().enumerate() {
            let node = match &step.command {
                Some(command) => {
                    format!(
                        "s{}[\"{}<br/>{}\"]",
                        i + 1,
                        label(&step.name),
                        label(command)
                    )
                }
                // A wait is a parallelogram: it sends nothing.
                None => format!("s{}[/\"{}<br/>waits\"/]", i + 1, label(&step.name)),
            };
            line(&mut out, node);
        }
        line(
            &mut out,
            format!("completed([\"{}\"])", ending("completed", &self.completion)),
        );
        let can_stop = self.steps.iter().any(|step| !step.stopped_by.is_empty());
        if can_stop {
            line(&mut out, "stopped([\"stopped\"])".to_owned());
        }
        let can_fail = self.can_fail();
        if can_fail {
            for (i, step) in self.steps.iter().enumerate().rev() {
                if let Some(compensation) = &step.compensation {
                    line(
                        &mut out,
                        format!(
                            "u{}[\"undo {}<br/>{}\"]",
                            i + 1,
                            label(&step.name),
                            label(compensation)
                        ),
                    );
                }
            }
            line(
                &mut out,
                format!(
                    "compensated([\"{}\"])",
                    ending("compensated", &self.cancellation)
                ),
            );
        }
        line(&mut out, "start --> s1".to_owned());
        for (i, step) in self.steps.iter().enumerate() {
            let next = if i + 1 == self.steps.len() {
                "completed".to_owned()
            } else {
                format!("s{}", i + 2)
            };
            line(&mut out, arrow(i + 1, "-->", &step.succeeds_on, &next));
            if !step.stopped_by.is_empty() {
                line(&mut out, arrow(i + 1, "-->", &step.stopped_by, "stopped"));
            }
            if !step.fails_on.is_empty() {
                let target = self.undo_from(i, false);
                line(&mut out, arrow(i + 1, "-.->", &step.fails_on, &target));
            }
            if let Some(timeout) = &step.timeout {
                let target = self.undo_from(i, true);
                let name = [format!("timeout {timeout}")];
                line(&mut out, arrow(i + 1, "-.->", &name, &target));
            }
        }
        if can_fail {
            let mut chain: Vec<String> = (0..self.steps.len())
                .rev()
                .filter(|&i| self.steps[i].compensation.is_some())
                .map(|i| format!("u{}", i + 1))
                .collect();
            chain.push("compensated".to_owned());
            for pair in chain.windows(2) {
                line(&mut out, format!("{} --> {}", pair[0], pair[1]));
            }
        }
        out
    }

    /// Every path the map draws, with the inputs (by name) it takes and
    /// the commands it sends, in order, and how it ends.
    fn paths(&self) -> Vec<(Ending, Vec<Input<'_>>, Vec<&str>, SagaOutcome)> {
        let mut endings = vec![Ending::Completed];
        for (k, step) in self.steps.iter().enumerate() {
            endings.extend((0..step.fails_on.len()).map(|i| Ending::Failed(k, i)));
            if step.timeout.is_some() {
                endings.push(Ending::TimedOut(k));
            }
            endings.extend((0..step.stopped_by.len()).map(|i| Ending::Stopped(k, i)));
        }
        endings
            .into_iter()
            .map(|ending| {
                let reached = match ending {
                    Ending::Completed => self.steps.len(),
                    Ending::Failed(k, _) | Ending::TimedOut(k) | Ending::Stopped(k, _) => k + 1,
                };
                let mut inputs = vec![Input::Event(&self.trigger)];
                let mut commands: Vec<&str> = Vec::new();
                for (k, step) in self.steps[..reached].iter().enumerate() {
                    commands.extend(step.command.as_deref());
                    if k + 1 < reached || ending == Ending::Completed {
                        // `build` made sure every step has one.
                        if let Some(success) = step.succeeds_on.first() {
                            inputs.push(Input::Event(success));
                        }
                    }
                }
                let outcome = match ending {
                    Ending::Completed => {
                        commands.extend(self.completion.iter().map(String::as_str));
                        SagaOutcome::Completed
                    }
                    Ending::Stopped(k, i) => {
                        inputs.push(Input::Event(&self.steps[k].stopped_by[i]));
                        SagaOutcome::Completed
                    }
                    Ending::Failed(k, _) | Ending::TimedOut(k) => {
                        let undone = match ending {
                            Ending::Failed(_, i) => {
                                inputs.push(Input::Event(&self.steps[k].fails_on[i]));
                                k
                            }
                            _ => {
                                let name = self.steps[k].timeout.as_deref().unwrap_or_default();
                                inputs.push(Input::Timeout(name));
                                k + 1
                            }
                        };
                        commands.extend(
                            self.steps[..undone]
                                .iter()
                                .rev()
                                .filter_map(|step| step.compensation.as_deref()),
                        );
                        commands.extend(self.cancellation.iter().map(String::as_str));
                        SagaOutcome::Compensated
                    }
                };
                (ending, inputs, commands, outcome)
            })
            .collect()
    }

    /// Runs `saga` along every path of the map (each step succeeding, each
    /// failing with each of its failure inputs, each timing out, each
    /// stopped by each of its stop inputs) and checks
    /// that it sends the commands the map says, in order, and ends as the
    /// map says. `input` turns an input's name, as declared, into the
    /// saga's input (a sample value is enough). Only the saga's pure
    /// functions run (`react`, `on_timeout`, `apply`); command names are
    /// the variant names the commands serialize with.
    ///
    /// # Errors
    ///
    /// [`SagaError::MapMismatch`] (`CR-E0037`) for the first path where
    /// the saga does something else, naming the path, the commands the map
    /// expects and those the saga sent.
    pub fn verify<S: Saga>(
        &self,
        saga: &S,
        mut input: impl FnMut(&str) -> S::Input,
    ) -> Result<(), SagaError>
    where
        S::Command: Serialize,
    {
        let ctx = SagaContext::new(SagaId::new("verify")?, DateTime::UNIX_EPOCH);
        for (ending, inputs, expected, outcome) in self.paths() {
            let mut state = S::State::default();
            let mut sent = Vec::new();
            let mut ended = None;
            for step in &inputs {
                let reaction = match step {
                    Input::Event(name) => saga.react(&state, input(name), &ctx),
                    Input::Timeout(name) => saga.on_timeout(&state, name, &ctx),
                };
                sent.extend(reaction.commands().iter().map(command_name));
                ended = reaction.outcome().or(ended);
                for event in reaction.events() {
                    S::apply(&mut state, event);
                }
            }
            if sent != expected || ended != Some(outcome) {
                let path = inputs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(SagaError::MapMismatch {
                    kind: self.kind.clone(),
                    path: format!("{} ({path})", self.describe(ending)),
                    expected: format!("{expected:?}, then {outcome}"),
                    actual: format!(
                        "{sent:?}, then {}",
                        ended.map_or("no end".to_owned(), |o| o.to_string())
                    ),
                });
            }
        }
        Ok(())
    }

    fn describe(&self, ending: Ending) -> String {
        match ending {
            Ending::Completed => "every step succeeds".to_owned(),
            Ending::Failed(k, _) => format!("step `{}` fails", self.steps[k].name),
            Ending::TimedOut(k) => format!("step `{}` times out", self.steps[k].name),
            Ending::Stopped(k, i) => format!(
                "step `{}` is stopped by `{}`",
                self.steps[k].name, self.steps[k].stopped_by[i]
            ),
        }
    }
}

/// One input along a path: an event by name, or a timeout.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    Event(&'a str),
    Timeout(&'a str),
}

impl std::fmt::Display for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Event(name) => f.write_str(name),
            Self::Timeout(name) => write!(f, "timeout {name}"),
        }
    }
}

/// The variant name of a command, as it serializes (externally tagged:
/// `"Name"` or `{"Name": ...}`); anything else as its JSON.
pub(crate) fn command_name<C: Serialize>(command: &C) -> String {
    match serde_json::to_value(command) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => {
            map.keys().next().cloned().unwrap_or_default()
        }
        Ok(other) => other.to_string(),
        Err(error) => format!("(unserializable command: {error})"),
    }
}

/// `word`, then the commands sent, if any.
fn ending(word: &str, commands: &[String]) -> String {
    if commands.is_empty() {
        word.to_owned()
    } else {
        let commands: Vec<String> = commands.iter().map(|c| label(c)).collect();
        format!("{word}<br/>{}", commands.join(", "))
    }
}

/// An arrow from step node `from` to `to`, labelled with `inputs`.
fn arrow(from: usize, style: &str, inputs: &[String], to: &str) -> String {
    if inputs.is_empty() {
        return format!("s{from} {style} {to}");
    }
    let names: Vec<String> = inputs.iter().map(|input| label(input)).collect();
    format!("s{from} {style}|\"{}\"| {to}", names.join(" or "))
}

/// `text` safe inside a quoted mermaid label: the characters mermaid
/// gives meaning to are written as its entity codes, so a name cannot
/// break the diagram.
pub(crate) fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Writes `text` into `out` (a `String` cannot fail to be written to).
pub(crate) fn push_line(out: &mut String, text: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(text);
    out.push('\n');
}
