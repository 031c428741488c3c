//! A trip-booking saga: book the hotel, then the flight. If the flight is
//! refused, cancel the hotel; if a reply takes too long, cancel what may
//! have been booked. Everything it needs later is in its own state.

use std::time::Duration;

use composable_rust::Upcasters;
use composable_rust::event::decode;
use composable_rust::prelude::*;
use composable_rust::saga::{Reaction, Routed, SagaContext, SagaError, SagaId, SagaSteps};
use serde::{Deserialize, Serialize};

pub const REPLY_WITHIN: Duration = Duration::from_secs(30);

// ANCHOR: messages
/// What the saga hears: the request, then the hotel's and airline's
/// replies, all appended to the trip's stream (`trip-{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum TripInput {
    Requested {
        traveller: String,
        nights: u32,
        flight: String,
    },
    HotelBooked {
        confirmation: String,
    },
    HotelRefused,
    FlightBooked {
        ticket: String,
    },
    FlightRefused,
}

/// What it asks for. `CancelHotel` is the compensation of `BookHotel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TripCommand {
    BookHotel {
        trip: String,
        traveller: String,
        nights: u32,
    },
    CancelHotel {
        trip: String,
    },
    BookFlight {
        traveller: String,
        flight: String,
    },
}
// ANCHOR_END: messages

// ANCHOR: state
/// What the saga records about itself: its own facts, from which its state
/// is rebuilt after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum TripEvent {
    Started {
        trip: String,
        traveller: String,
        nights: u32,
        flight: String,
    },
    HotelHeld {
        confirmation: String,
    },
    FlightIssued {
        ticket: String,
    },
    GaveUp {
        reason: String,
    },
}

/// Everything later steps need, carried from the events it saw; the saga
/// never queries a read model or another aggregate for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trip {
    pub traveller: String,
    pub flight: String,
    pub hotel: Option<String>,
    pub ticket: Option<String>,
    pub steps: SagaSteps<TripCommand>,
}
// ANCHOR_END: state

// ANCHOR: saga
#[derive(Debug)]
pub struct BookTrip;

impl Saga for BookTrip {
    const KIND: &'static str = "book-trip";
    type State = Trip;
    type Input = TripInput;
    type Event = TripEvent;
    type Command = TripCommand;

    fn route(&self, event: &StoredEvent) -> Result<Option<Routed<TripInput>>, SagaError> {
        let Some(trip) = event.stream_id.as_str().strip_prefix("trip-") else {
            return Ok(None);
        };
        let input = decode::<TripInput>(event, &Upcasters::new())?;
        Ok(input.map(|input| Routed::new(SagaId::new(trip).expect("a valid id"), input)))
    }

    fn react(&self, trip: &Trip, input: TripInput, ctx: &SagaContext) -> Reaction<Self> {
        let in_flight = trip.steps.in_flight();
        match input {
            TripInput::Requested {
                traveller,
                nights,
                flight,
            } if trip.traveller.is_empty() => {
                let id = ctx.saga_id.to_string();
                Reaction::new()
                    .record(TripEvent::Started {
                        trip: id.clone(),
                        traveller: traveller.clone(),
                        nights,
                        flight,
                    })
                    .send(TripCommand::BookHotel {
                        trip: id,
                        traveller,
                        nights,
                    })
                    .start_timeout("reply", REPLY_WITHIN)
            }
            TripInput::HotelBooked { confirmation } if in_flight == ["hotel"] => Reaction::new()
                .record(TripEvent::HotelHeld { confirmation })
                .send(TripCommand::BookFlight {
                    traveller: trip.traveller.clone(),
                    flight: trip.flight.clone(),
                })
                .start_timeout("reply", REPLY_WITHIN),
            TripInput::FlightBooked { ticket } if in_flight == ["flight"] => Reaction::new()
                .record(TripEvent::FlightIssued { ticket })
                .cancel_timeout("reply")
                .complete(),
            TripInput::HotelRefused | TripInput::FlightRefused if !in_flight.is_empty() => {
                // The refused step did nothing: undo the completed ones.
                Reaction::new()
                    .record(TripEvent::GaveUp {
                        reason: "refused".into(),
                    })
                    .send_all(trip.steps.compensations())
                    .cancel_timeout("reply")
                    .compensated()
            }
            _ => Reaction::new(), // late or repeated: nothing to do
        }
    }

    fn on_timeout(&self, trip: &Trip, _name: &str, _: &SagaContext) -> Reaction<Self> {
        // No answer: the step in flight may have happened, so undo it too.
        Reaction::new()
            .record(TripEvent::GaveUp {
                reason: "no reply".into(),
            })
            .send_all(trip.steps.compensations_with_in_flight())
            .compensated()
    }

    fn apply(trip: &mut Trip, event: &TripEvent) {
        match event {
            TripEvent::Started {
                trip: id,
                traveller,
                flight,
                ..
            } => {
                trip.traveller.clone_from(traveller);
                trip.flight.clone_from(flight);
                let undo = TripCommand::CancelHotel { trip: id.clone() };
                trip.steps.start("hotel", Some(undo));
            }
            TripEvent::HotelHeld { confirmation } => {
                trip.hotel = Some(confirmation.clone());
                trip.steps.complete("hotel");
                trip.steps.start("flight", None);
            }
            TripEvent::FlightIssued { ticket } => {
                trip.ticket = Some(ticket.clone());
                trip.steps.complete("flight");
            }
            TripEvent::GaveUp { .. } => {}
        }
    }
}
// ANCHOR_END: saga

#[cfg(test)]
mod tests {
    use composable_rust::testing::SagaTest;

    use super::*;

    fn requested() -> TripInput {
        TripInput::Requested {
            traveller: "Ada".into(),
            nights: 2,
            flight: "LH 123".into(),
        }
    }

    fn book_hotel() -> TripCommand {
        TripCommand::BookHotel {
            trip: "rome-7".into(),
            traveller: "Ada".into(),
            nights: 2,
        }
    }

    fn book_flight() -> TripCommand {
        TripCommand::BookFlight {
            traveller: "Ada".into(),
            flight: "LH 123".into(),
        }
    }

    fn cancel_hotel() -> TripCommand {
        TripCommand::CancelHotel {
            trip: "rome-7".into(),
        }
    }

    // ANCHOR: compensation_test
    #[test]
    fn a_refused_flight_cancels_the_hotel() {
        let mut test = SagaTest::new(BookTrip).with_saga_id("rome-7");
        test.when(requested()).then_commands([book_hotel()]);
        let booked = TripInput::HotelBooked {
            confirmation: "H-42".into(),
        };
        test.when(booked).then_commands([book_flight()]);
        test.when(TripInput::FlightRefused)
            .then_commands([cancel_hotel()])
            .then_compensated();
        test.finish();
    }

    #[test]
    fn a_refused_hotel_has_nothing_to_undo() {
        let mut test = SagaTest::new(BookTrip).with_saga_id("rome-7");
        test.when(requested()).then_commands([book_hotel()]);
        test.when(TripInput::HotelRefused)
            .then_no_commands()
            .then_compensated();
        test.finish();
    }

    #[test]
    fn no_reply_cancels_what_may_have_been_booked() {
        let mut test = SagaTest::new(BookTrip).with_saga_id("rome-7");
        test.when(requested()).then_commands([book_hotel()]);
        test.advance(REPLY_WITHIN)
            .then_commands([cancel_hotel()])
            .then_compensated();
        test.finish();
    }
    // ANCHOR_END: compensation_test

    // ANCHOR: state_test
    #[test]
    fn the_state_survives_a_restart() {
        let mut test = SagaTest::new(BookTrip).with_saga_id("rome-7");
        test.when(requested()).then_commands([book_hotel()]);
        // A new process: the saga is rebuilt from its own stream.
        test.restart().then_state(|trip| {
            assert_eq!(trip.traveller, "Ada");
            assert_eq!(trip.steps.in_flight(), ["hotel"]);
        });
        // It still knows whom and which flight to book, without asking.
        let booked = TripInput::HotelBooked {
            confirmation: "H-42".into(),
        };
        test.when(booked).then_commands([book_flight()]);
        let issued = TripInput::FlightBooked {
            ticket: "T-9".into(),
        };
        test.when(issued)
            .then_no_commands()
            .then_completed()
            .then_state(|trip| {
                assert_eq!(trip.hotel.as_deref(), Some("H-42"));
                assert_eq!(trip.ticket.as_deref(), Some("T-9"));
            });
        test.finish();
    }
    // ANCHOR_END: state_test
}
