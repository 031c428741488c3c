//! An HTTP-style account service, without a web framework: a request goes
//! in, a response comes out. A command goes through the repository, then
//! waits for the projection to apply it, then answers from the read model.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::error::{ErrorClass, codes};
use composable_rust::prelude::*;
use composable_rust::{AggregateRepository, ProjectionError, ProjectionManager};
use serde_json::{Value, json};

use crate::account::{Account, AccountCommand, AccountError};
use crate::failure::Failure;
use crate::summaries::{AccountSummaries, AccountSummary, summary_key};

// ANCHOR: http
/// A request, as a router would hand it over: the method and path choose
/// the variant, the path and the JSON body fill it in.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `POST /accounts/{id}` with `{"owner": ...}`
    Open { id: u32, owner: String },
    /// `POST /accounts/{id}/deposits` with `{"amount": ...}`
    Deposit { id: u32, amount: u64 },
    /// `POST /accounts/{id}/withdrawals` with `{"amount": ...}`
    Withdraw { id: u32, amount: u64 },
    /// `GET /accounts/{id}`
    Get { id: u32 },
}

/// A status code and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}
// ANCHOR_END: http

impl Response {
    fn new(status: u16, body: Value) -> Self {
        Self { status, body }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { id, owner } => {
                write!(f, "POST /accounts/{id} {}", json!({ "owner": owner }))
            }
            Self::Deposit { id, amount } => {
                write!(
                    f,
                    "POST /accounts/{id}/deposits {}",
                    json!({ "amount": amount })
                )
            }
            Self::Withdraw { id, amount } => {
                write!(
                    f,
                    "POST /accounts/{id}/withdrawals {}",
                    json!({ "amount": amount })
                )
            }
            Self::Get { id } => write!(f, "GET /accounts/{id}"),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

// ANCHOR: service
/// The accounts API: commands go to the event store through the
/// repository, queries to the read model that the projection keeps.
#[derive(Debug)]
pub struct AccountService<P: ProjectionCheckpoint> {
    accounts: AggregateRepository<Account, Arc<dyn EventStore>>,
    summaries: ProjectionManager<AccountSummaries<P>>,
    read_timeout: Duration,
}

impl<P: ProjectionCheckpoint> AccountService<P> {
    /// A service that writes to `events` and reads the read model kept by
    /// `summaries` (which the caller runs, with `start()`).
    pub fn new(
        events: Arc<dyn EventStore>,
        summaries: ProjectionManager<AccountSummaries<P>>,
    ) -> Self {
        Self {
            accounts: AggregateRepository::new(events, ()),
            summaries,
            read_timeout: Duration::from_secs(2),
        }
    }

    /// How long a command waits for the read model to show its write
    /// (default 2 seconds).
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Answers one request; never fails: every error becomes a response.
    pub async fn handle(&self, request: Request) -> Response {
        match request {
            Request::Open { id, owner } => {
                self.command(id, AccountCommand::Open { owner }, 201).await
            }
            Request::Deposit { id, amount } => {
                self.command(id, AccountCommand::Deposit { amount }, 200)
                    .await
            }
            Request::Withdraw { id, amount } => {
                self.command(id, AccountCommand::Withdraw { amount }, 200)
                    .await
            }
            Request::Get { id } => self.query(id).await,
        }
    }
}
// ANCHOR_END: service

// ANCHOR: command
impl<P: ProjectionCheckpoint> AccountService<P> {
    async fn command(&self, id: u32, command: AccountCommand, status: u16) -> Response {
        let stream = match self.accounts.stream_id(id) {
            Ok(stream) => stream,
            Err(error) => return failure_response(&Failure::from_error(&error)),
        };
        // 1. The write side: load, decide, append; on a conflict, reload
        //    and decide again (3 attempts in all).
        let executed = match self
            .accounts
            .execute_with_retry(&stream, 3, || command.clone())
            .await
        {
            Ok(executed) => executed,
            Err(error) => return failure_response(&error.into()),
        };
        // 2. Read your own write: wait until the projection has applied
        //    the position of the last event appended.
        if let Some(position) = executed.position
            && let Err(error) = self.summaries.wait_for(position, self.read_timeout).await
        {
            // The events are stored: the command succeeded, whatever the
            // read model says. Never answer with an error here.
            return Response::new(
                202,
                json!({ "position": position.to_string(), "detail": error.to_string() }),
            );
        }
        // 3. The read side: answer from the read model.
        match self.summary(&stream).await {
            Ok(Some(summary)) => Response::new(status, json!(summary)),
            Ok(None) => not_found(id),
            Err(error) => failure_response(&Failure::from_error(&error)),
        }
    }
}
// ANCHOR_END: command

// ANCHOR: query
impl<P: ProjectionCheckpoint> AccountService<P> {
    /// A query reads the read model as it is: it does not wait.
    async fn query(&self, id: u32) -> Response {
        let stream = match self.accounts.stream_id(id) {
            Ok(stream) => stream,
            Err(error) => return failure_response(&Failure::from_error(&error)),
        };
        match self.summary(&stream).await {
            Ok(Some(summary)) => Response::new(200, json!(summary)),
            Ok(None) => not_found(id),
            Err(error) => failure_response(&Failure::from_error(&error)),
        }
    }

    async fn summary(&self, stream: &StreamId) -> Result<Option<AccountSummary>, ProjectionError> {
        self.summaries.store().get_json(&summary_key(stream)).await
    }
}
// ANCHOR_END: query

fn not_found(id: u32) -> Response {
    Response::new(
        404,
        json!({ "error": { "message": format!("no account {id}") } }),
    )
}

// ANCHOR: errors
/// The response to a command or query that failed (nothing was written).
pub fn failure_response(failure: &Failure) -> Response {
    match failure {
        // The account's rules said no: the client must change the request.
        Failure::Refused(AccountError::NotOpen) => Response::new(
            404,
            json!({ "error": { "message": failure_message(failure) } }),
        ),
        Failure::Refused(_) => Response::new(
            422,
            json!({ "error": { "message": failure_message(failure) } }),
        ),
        // A store failed: the class says whether trying again can help.
        Failure::Store {
            code,
            class,
            message,
        } => {
            let (status, retry) = match class {
                // Another writer changed the account on every attempt: the
                // same request may well succeed if sent again.
                _ if *code == codes::WRONG_EXPECTED_VERSION => (409, true),
                // The database is down or overloaded: try again later.
                ErrorClass::Transient => (503, true),
                // This request will never succeed as it is.
                ErrorClass::Permanent => (422, false),
                // The server is set up wrong: someone has to fix it.
                ErrorClass::Configuration => (500, false),
            };
            Response::new(
                status,
                json!({ "error": {
                    "code": code.as_str(),
                    "class": class.as_str(),
                    "retry": retry,
                    "message": message,
                } }),
            )
        }
    }
}
// ANCHOR_END: errors

fn failure_message(failure: &Failure) -> String {
    match failure {
        Failure::Refused(reason) => reason.to_string(),
        Failure::Store { message, .. } => message.clone(),
    }
}
