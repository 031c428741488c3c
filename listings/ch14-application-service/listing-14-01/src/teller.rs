//! The account aggregate run inside a `Store`: the reducer decides what to
//! do, an effect executes the command through the repository, and the
//! result comes back as an action.

use std::collections::BTreeMap;
use std::sync::Arc;

use composable_rust::AggregateRepository;
use composable_rust::aggregate::Executed;
use composable_rust::prelude::*;

use crate::account::{Account, AccountCommand};
use crate::failure::Failure;

// ANCHOR: types
/// What a teller's screen shows. Not the accounts themselves: those live
/// in the event store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TellerState {
    /// Commands on their way to the event store.
    pub in_flight: usize,
    /// Each account's balance after the last command that succeeded on it.
    pub balances: BTreeMap<u32, u64>,
    /// The last failure, and the account it happened to.
    pub last_failure: Option<(u32, Failure)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TellerAction {
    /// From the screen: run `command` on account `id`.
    Execute { id: u32, command: AccountCommand },
    /// Fed back: the command's events are stored; the account's stream is
    /// now at `version`.
    Executed { id: u32, balance: u64, version: u64 },
    /// Fed back: the command failed; nothing was written.
    Failed { id: u32, failure: Failure },
}

/// The teller's dependency: the repository of accounts, on any event store.
#[derive(Debug)]
pub struct TellerEnvironment {
    pub accounts: Arc<AggregateRepository<Account, Arc<dyn EventStore>>>,
}
// ANCHOR_END: types

// ANCHOR: reducer
#[derive(Debug)]
pub struct TellerReducer;

impl Reducer for TellerReducer {
    type State = TellerState;
    type Action = TellerAction;
    type Environment = TellerEnvironment;

    fn reduce(
        &self,
        state: &mut TellerState,
        action: TellerAction,
        env: &TellerEnvironment,
    ) -> Effects<TellerAction> {
        match action {
            TellerAction::Execute { id, command } => {
                state.in_flight += 1;
                let accounts = Arc::clone(&env.accounts);
                // The reducer only describes the work; the store runs it.
                vec![Effect::future(async move {
                    Some(match execute(&accounts, id, command).await {
                        Ok(executed) => TellerAction::Executed {
                            id,
                            balance: executed.state.balance,
                            version: executed.version,
                        },
                        Err(failure) => TellerAction::Failed { id, failure },
                    })
                })]
            }
            TellerAction::Executed { id, balance, .. } => {
                state.in_flight -= 1;
                state.balances.insert(id, balance);
                Effects::new()
            }
            TellerAction::Failed { id, failure } => {
                state.in_flight -= 1;
                state.last_failure = Some((id, failure));
                Effects::new()
            }
        }
    }
}

/// Load, decide, append, apply: the repository does it all, reloading and
/// deciding again (up to 3 times in all) if another writer got there first.
async fn execute(
    accounts: &AggregateRepository<Account, Arc<dyn EventStore>>,
    id: u32,
    command: AccountCommand,
) -> Result<Executed<Account>, Failure> {
    let stream = accounts
        .stream_id(id)
        .map_err(|error| Failure::from_error(&error))?;
    Ok(accounts
        .execute_with_retry(&stream, 3, || command.clone())
        .await?)
}
// ANCHOR_END: reducer
