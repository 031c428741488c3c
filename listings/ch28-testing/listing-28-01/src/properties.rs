//! Property-based tests: rules that must hold for every input, not only
//! the examples a test spells out.

use bank::account::{Account, AccountCommand, AccountError};
use composable_rust::prelude::*;
use composable_rust::testing::properties::Properties;
use composable_rust::testing::proptest::prelude::*;

use std::sync::Arc;

use composable_rust::TestClock;

use crate::invitations::{
    InMemoryMailer, InvitationAction, InvitationEnv, InvitationReducer, Invitations,
};

// ANCHOR: model
fn commands() -> impl Strategy<Value = AccountCommand> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|owner| AccountCommand::Open { owner }),
        (0..200u64).prop_map(|amount| AccountCommand::Deposit { amount }),
        (0..200u64).prop_map(|amount| AccountCommand::Withdraw { amount }),
    ]
}

proptest! {
    /// Any sequence of commands: the account agrees with a model of its
    /// rules written as plainly as possible, and never goes negative.
    #[test]
    fn the_account_follows_its_model(commands in prop::collection::vec(commands(), 0..40)) {
        let mut account = Account::default();
        let (mut open, mut balance) = (false, 0i128);
        for command in commands {
            let expected_ok = match &command {
                AccountCommand::Open { .. } => !open,
                AccountCommand::Deposit { amount } => open && *amount > 0,
                AccountCommand::Withdraw { amount } => {
                    open && *amount > 0 && i128::from(*amount) <= balance
                }
            };
            match account.decide(command.clone(), &()) {
                Ok(events) => {
                    prop_assert!(expected_ok, "{command:?} was accepted");
                    events.iter().for_each(|event| account.apply(event));
                    match command {
                        AccountCommand::Open { .. } => open = true,
                        AccountCommand::Deposit { amount } => balance += i128::from(amount),
                        AccountCommand::Withdraw { amount } => balance -= i128::from(amount),
                    }
                }
                Err(AccountError::InsufficientFunds { balance: b, .. }) => {
                    prop_assert!(!expected_ok);
                    prop_assert_eq!(i128::from(b), balance);
                }
                Err(_) => prop_assert!(!expected_ok, "{command:?} was refused"),
            }
            prop_assert_eq!(i128::from(account.balance), balance);
        }
    }
}
// ANCHOR_END: model

// ANCHOR: invariant
/// Whatever actions arrive, in whatever order (a late `Sent`, an `Expire`
/// for an address never invited...), only valid addresses that were
/// invited have an invitation.
#[test]
fn only_invited_addresses_have_an_invitation() {
    let email = prop_oneof![
        Just("ada@example.com"),
        Just("bob@example.com"),
        Just("carol")
    ]
    .prop_map(String::from);
    let actions = (0..5u8, email).prop_map(|(kind, email)| match kind {
        0 => InvitationAction::Invite { email },
        1 => InvitationAction::Sent { email },
        2 => InvitationAction::Accept { email },
        3 => InvitationAction::Expire { email },
        _ => InvitationAction::SendFailed {
            email,
            reason: "bounced".into(),
        },
    });
    let env = InvitationEnv {
        clock: Arc::new(TestClock::new()),
        mailer: Arc::new(InMemoryMailer::new()),
    };
    Properties::new().with_cases(200).reducer_invariant(
        &InvitationReducer,
        &env,
        Invitations::default,
        actions,
        |state| match state.by_email.keys().find(|email| !email.contains('@')) {
            Some(email) => Err(format!("{email} has an invitation")),
            None => Ok(()),
        },
    );
}
// ANCHOR_END: invariant
