//! Validating commands: the shape of the input is checked when the command
//! is built; the rules that depend on the state are checked in `decide`.

use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

// ANCHOR: shape
/// A number of seats, 1 to 10: a `SeatCount` that exists is valid, so no
/// code after the parser checks it again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeatCount(u32);

/// Why the input is malformed: the client's mistake, refused before the
/// aggregate is even loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a booking is for 1 to 10 seats, not {0}; ask for fewer seats")]
pub struct InvalidSeatCount(pub u32);

impl SeatCount {
    pub fn new(seats: u32) -> Result<Self, InvalidSeatCount> {
        if (1..=10).contains(&seats) {
            Ok(Self(seats))
        } else {
            Err(InvalidSeatCount(seats))
        }
    }
}
// ANCHOR_END: shape

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum ShowEvent {
    Scheduled { capacity: u32 },
    Booked { seats: SeatCount },
}

/// Booking for a show: the command holds a validated `SeatCount`.
#[derive(Debug)]
pub enum ShowCommand {
    Schedule { capacity: u32 },
    Book { seats: SeatCount },
}

// ANCHOR: rules
/// Why the show refuses a command: a business rule, given its state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShowError {
    #[error("the show is not scheduled")]
    NotScheduled,
    #[error("only {left} seats are left, {wanted} were asked for")]
    NotEnoughSeats { left: u32, wanted: u32 },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Show {
    pub capacity: u32,
    pub booked: u32,
}

impl Aggregate for Show {
    const KIND: &'static str = "show";
    type Event = ShowEvent;
    type Command = ShowCommand;
    type Error = ShowError;
    type Environment = ();

    fn decide(&self, command: ShowCommand, _: &()) -> Result<Vec<ShowEvent>, ShowError> {
        match command {
            ShowCommand::Schedule { capacity } => Ok(vec![ShowEvent::Scheduled { capacity }]),
            ShowCommand::Book { .. } if self.capacity == 0 => Err(ShowError::NotScheduled),
            ShowCommand::Book { seats } => {
                let left = self.capacity.saturating_sub(self.booked);
                if seats.0 > left {
                    return Err(ShowError::NotEnoughSeats {
                        left,
                        wanted: seats.0,
                    });
                }
                Ok(vec![ShowEvent::Booked { seats }])
            }
        }
    }

    fn apply(&mut self, event: &ShowEvent) {
        match event {
            ShowEvent::Scheduled { capacity } => self.capacity = *capacity,
            ShowEvent::Booked { seats } => self.booked += seats.0,
        }
    }
}
// ANCHOR_END: rules

// ANCHOR: test
#[cfg(test)]
mod tests {
    use composable_rust::aggregate::RepositoryError;
    use composable_rust::{AggregateRepository, ErrorClass, InMemoryEventStore};

    use super::*;

    #[test]
    fn a_malformed_request_never_becomes_a_command() {
        assert_eq!(SeatCount::new(0), Err(InvalidSeatCount(0)));
        assert_eq!(SeatCount::new(11), Err(InvalidSeatCount(11)));
        assert!(SeatCount::new(4).is_ok());
    }

    #[tokio::test]
    async fn a_refusal_is_typed_coded_and_writes_nothing() {
        let shows = AggregateRepository::<Show, _>::new(InMemoryEventStore::new(), ());
        let show = shows.stream_id("hamlet-0612").unwrap();
        shows
            .execute(&show, ShowCommand::Schedule { capacity: 12 })
            .await
            .unwrap();
        let ten = ShowCommand::Book {
            seats: SeatCount::new(10).unwrap(),
        };
        shows.execute(&show, ten).await.unwrap();

        let three = ShowCommand::Book {
            seats: SeatCount::new(3).unwrap(),
        };
        let error = shows.execute(&show, three).await.unwrap_err();
        assert!(matches!(
            &error,
            RepositoryError::Rejected(ShowError::NotEnoughSeats { left: 2, wanted: 3 })
        ));
        assert_eq!(error.code().as_str(), "CR-E0020");
        assert_eq!(
            error.class(),
            ErrorClass::Permanent,
            "retrying will not help"
        );
        assert_eq!(shows.store().stream_version(&show).await.unwrap(), 2);
    }
}
// ANCHOR_END: test
