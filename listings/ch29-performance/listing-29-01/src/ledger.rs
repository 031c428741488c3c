//! The aggregate every recipe uses: a ledger whose balance is the sum of
//! its postings.

use composable_rust::{Aggregate, Event};
use serde::{Deserialize, Serialize};

/// What happened to a ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum LedgerEvent {
    /// An amount was posted (negative: taken out).
    Posted { amount: i64 },
    /// A note was attached; it does not change the balance.
    Noted { text: String },
}

/// What a ledger is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerCommand {
    /// Post one amount.
    Post(i64),
    /// Post several amounts at once: one command, one append.
    PostMany(Vec<i64>),
}

/// Why a ledger refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdrawn {
    /// The balance the command would have left.
    pub would_be: i64,
}

impl std::fmt::Display for Overdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the ledger would end at {}, below zero; post less",
            self.would_be
        )
    }
}

impl std::error::Error for Overdrawn {}

/// The state: the balance and how many postings made it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The sum of every posting.
    pub balance: i64,
    /// How many postings were applied.
    pub postings: u64,
}

impl Aggregate for Ledger {
    const KIND: &'static str = "ledger";
    type Event = LedgerEvent;
    type Command = LedgerCommand;
    type Error = Overdrawn;
    type Environment = ();

    fn decide(&self, command: LedgerCommand, _: &()) -> Result<Vec<LedgerEvent>, Overdrawn> {
        let amounts = match command {
            LedgerCommand::Post(amount) => vec![amount],
            LedgerCommand::PostMany(amounts) => amounts,
        };
        let would_be = self.balance + amounts.iter().sum::<i64>();
        if would_be < 0 {
            return Err(Overdrawn { would_be });
        }
        Ok(amounts
            .into_iter()
            .map(|amount| LedgerEvent::Posted { amount })
            .collect())
    }

    fn apply(&mut self, event: &LedgerEvent) {
        if let LedgerEvent::Posted { amount } = event {
            self.balance += amount;
            self.postings += 1;
        }
    }
}
