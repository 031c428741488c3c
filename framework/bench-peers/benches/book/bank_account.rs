//! The comparison domain of the book's "Coming from Another Framework"
//! (an account with an overdraft limit) written with cqrs-es 0.5, the way
//! its documentation writes aggregates. It lives here, beside the peer
//! benchmark, because this crate is the only one that depends on cqrs-es:
//! `cargo build --benches` compiles it, and running it checks the rules
//! with cqrs-es's own `TestFramework`. CI never builds it (see README.md).

use cqrs_es::mem_store::MemStore;
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, DomainEvent, EventEnvelope, View};
use serde::{Deserialize, Serialize};

// ANCHOR: aggregate
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String, overdraft_limit: u64 },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Opened { .. } => "Opened",
            Self::Deposited { .. } => "Deposited",
            Self::Withdrawn { .. } => "Withdrawn",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

pub enum AccountCommand {
    Open { owner: String, overdraft_limit: u64 },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

#[derive(Debug, PartialEq)]
pub struct AccountError(String);

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccountError {}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: i64,
    overdraft_limit: u64,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    // `handle` may await services; events go to the sink, which applies
    // each to `self` as it is written.
    async fn handle(
        &mut self,
        command: AccountCommand,
        _services: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), AccountError> {
        let event = match command {
            AccountCommand::Open { .. } if self.open => return Err(error("already open")),
            AccountCommand::Open {
                owner,
                overdraft_limit,
            } => AccountEvent::Opened {
                owner,
                overdraft_limit,
            },
            _ if !self.open => return Err(error("not open")),
            AccountCommand::Deposit { amount } => AccountEvent::Deposited { amount },
            AccountCommand::Withdraw { amount }
                if amount as i64 > self.balance + self.overdraft_limit as i64 =>
            {
                return Err(error("overdraft limit exceeded"));
            }
            AccountCommand::Withdraw { amount } => AccountEvent::Withdrawn { amount },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Opened {
                overdraft_limit, ..
            } => {
                self.open = true;
                self.overdraft_limit = overdraft_limit;
            }
            AccountEvent::Deposited { amount } => self.balance += amount as i64,
            AccountEvent::Withdrawn { amount } => self.balance -= amount as i64,
        }
    }
}
// ANCHOR_END: aggregate

fn error(message: &str) -> AccountError {
    AccountError(message.to_string())
}

// ANCHOR: view
/// A read model: cqrs-es hands each committed event to the views of the
/// queries registered with the framework (postgres-es's `GenericQuery`
/// loads, updates and saves one per aggregate id).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BalanceView {
    balance: i64,
}

impl View<Account> for BalanceView {
    fn update(&mut self, event: &EventEnvelope<Account>) {
        match &event.payload {
            AccountEvent::Deposited { amount } => self.balance += *amount as i64,
            AccountEvent::Withdrawn { amount } => self.balance -= *amount as i64,
            AccountEvent::Opened { .. } => {}
        }
    }
}
// ANCHOR_END: view

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // ANCHOR: test
    TestFramework::<Account>::with(())
        .given(vec![
            AccountEvent::Opened {
                owner: "Ada".into(),
                overdraft_limit: 100,
            },
            AccountEvent::Deposited { amount: 50 },
        ])
        .when_async(AccountCommand::Withdraw { amount: 151 })
        .await
        .then_expect_error(error("overdraft limit exceeded"));
    // ANCHOR_END: test
    TestFramework::<Account>::with(())
        .given(vec![AccountEvent::Opened {
            owner: "Ada".into(),
            overdraft_limit: 100,
        }])
        .when_async(AccountCommand::Withdraw { amount: 100 })
        .await
        .then_expect_events(vec![AccountEvent::Withdrawn { amount: 100 }]);

    let cqrs = CqrsFramework::new(MemStore::<Account>::default(), vec![], ());
    let open = AccountCommand::Open {
        owner: "Ada".into(),
        overdraft_limit: 100,
    };
    cqrs.execute("ada", open).await.unwrap();
    let refused = cqrs
        .execute("ada", AccountCommand::Withdraw { amount: 101 })
        .await;
    assert!(matches!(refused, Err(AggregateError::UserError(_))));

    let mut view = BalanceView::default();
    view.update(&EventEnvelope {
        aggregate_id: "ada".into(),
        sequence: 2,
        payload: AccountEvent::Withdrawn { amount: 30 },
        metadata: Default::default(),
    });
    assert_eq!(view.balance, -30);
    println!("cqrs-es bank account: ok");
}
