//! Listing 34-1: the fixes of "Compile Errors Explained", one module per
//! error, each compiled and tested.

// ANCHOR: bounds
/// Actions are `Clone` (the store hands each to its subscribers) and `Debug`;
/// state shared across threads uses `Arc`, not `Rc`.
pub mod bounds {
    use std::sync::Arc;

    use composable_rust::{Effects, Reducer};

    /// A cart whose items are shared cheaply, and sent between threads.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Cart {
        /// The items, shared with whoever read them last.
        pub items: Arc<Vec<String>>,
    }

    /// What can happen to the cart.
    #[derive(Debug, Clone, PartialEq)]
    pub enum CartAction {
        /// Put an item in the cart.
        Add(String),
    }

    /// The cart's reducer.
    #[derive(Debug)]
    pub struct CartReducer;

    impl Reducer for CartReducer {
        type State = Cart;
        type Action = CartAction;
        type Environment = ();

        fn reduce(&self, state: &mut Cart, action: CartAction, _: &()) -> Effects<CartAction> {
            match action {
                CartAction::Add(item) => Arc::make_mut(&mut state.items).push(item),
            }
            Effects::new()
        }
    }
}
// ANCHOR_END: bounds

// ANCHOR: one_action
/// Two features with their own actions, combined under one parent action.
pub mod one_action {
    use composable_rust::{Action, Effects, Reducer, combine, embed};

    /// The shop: each feature owns its part of the state.
    #[derive(Debug, Default)]
    pub struct Shop {
        /// Orders placed.
        pub orders: u32,
        /// E-mails sent.
        pub emails: u32,
    }

    /// The orders feature's actions.
    #[derive(Debug, Clone)]
    pub enum OrderAction {
        /// Place an order.
        Place,
    }

    /// The e-mail feature's actions.
    #[derive(Debug, Clone)]
    pub enum EmailAction {
        /// Send an e-mail.
        Send,
    }

    /// The parent's action wraps each child's.
    #[derive(Debug, Clone, Action)]
    pub enum ShopAction {
        /// An action of the orders feature.
        #[child]
        Order(OrderAction),
        /// An action of the e-mail feature.
        #[child]
        Email(EmailAction),
    }

    /// Counts orders.
    #[derive(Debug)]
    pub struct Orders;

    impl Reducer for Orders {
        type State = u32;
        type Action = OrderAction;
        type Environment = ();

        fn reduce(&self, orders: &mut u32, _: OrderAction, _: &()) -> Effects<OrderAction> {
            *orders += 1;
            Effects::new()
        }
    }

    /// Counts e-mails.
    #[derive(Debug)]
    pub struct Emails;

    impl Reducer for Emails {
        type State = u32;
        type Action = EmailAction;
        type Environment = ();

        fn reduce(&self, emails: &mut u32, _: EmailAction, _: &()) -> Effects<EmailAction> {
            *emails += 1;
            Effects::new()
        }
    }

    /// Both features, embedded into the shop: now the actions agree.
    pub fn shop() -> impl Reducer<State = Shop, Action = ShopAction, Environment = ()> {
        combine(
            embed(Orders, |shop: &mut Shop| &mut shop.orders, |env: &()| env),
            embed(Emails, |shop: &mut Shop| &mut shop.emails, |env: &()| env),
        )
    }
}
// ANCHOR_END: one_action

// ANCHOR: aggregate
/// `decide` takes `Self::Command`, exactly as the trait declares it.
pub mod aggregate {
    use std::convert::Infallible;

    use composable_rust::Aggregate;
    use serde::{Deserialize, Serialize};

    /// What happened to an account.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, composable_rust::Event)]
    pub enum AccountEvent {
        /// Money came in.
        Deposited {
            /// How much, in cents.
            amount: u64,
        },
    }

    /// What an account can be asked to do.
    #[derive(Debug)]
    pub enum AccountCommand {
        /// Put money in.
        Deposit {
            /// How much, in cents.
            amount: u64,
        },
    }

    /// An account.
    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Account {
        /// The balance, in cents.
        pub balance: u64,
    }

    impl Aggregate for Account {
        const KIND: &'static str = "account";
        type Event = AccountEvent;
        type Command = AccountCommand;
        type Error = Infallible;
        type Environment = ();

        fn decide(&self, command: AccountCommand, _: &()) -> Result<Vec<AccountEvent>, Infallible> {
            match command {
                AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
            }
        }

        fn apply(&mut self, event: &AccountEvent) {
            match event {
                AccountEvent::Deposited { amount } => self.balance += amount,
            }
        }
    }
}
// ANCHOR_END: aggregate

// ANCHOR: effects
/// Effects own what they use: a tokio mutex across `.await`, an `Arc`
/// cloned out of the environment before `async move`.
pub mod effects {
    use std::sync::Arc;
    use std::time::Duration;

    use composable_rust::{Clock, Effect, Effects, Reducer};
    use tokio::sync::Mutex;

    /// Counts finished backups.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Backup {
        /// Backups finished.
        pub runs: u32,
    }

    /// What can happen to a backup.
    #[derive(Debug, Clone, PartialEq)]
    pub enum BackupAction {
        /// Start a backup.
        Start,
        /// A backup finished.
        Finished,
    }

    /// The backup's dependencies.
    #[derive(Debug)]
    pub struct Environment {
        /// A log the effect writes to; a tokio mutex may be held across `.await`.
        pub log: Arc<Mutex<Vec<String>>>,
        /// The clock.
        pub clock: Arc<dyn Clock>,
    }

    /// The backup's reducer.
    #[derive(Debug)]
    pub struct BackupReducer;

    impl Reducer for BackupReducer {
        type State = Backup;
        type Action = BackupAction;
        type Environment = Environment;

        fn reduce(
            &self,
            state: &mut Backup,
            action: BackupAction,
            env: &Environment,
        ) -> Effects<BackupAction> {
            match action {
                BackupAction::Start => {
                    // Owned copies: the effect outlives this call to `reduce`.
                    let log = Arc::clone(&env.log);
                    let clock = Arc::clone(&env.clock);
                    vec![Effect::future(async move {
                        let mut lines = log.lock().await;
                        lines.push(format!("started at {}", clock.now()));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        lines.push("finished".to_owned());
                        Some(BackupAction::Finished)
                    })]
                }
                BackupAction::Finished => {
                    state.runs += 1;
                    Effects::new()
                }
            }
        }
    }
}
// ANCHOR_END: effects

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::testing::TestStore;
    use composable_rust::{Aggregate, Reducer, Store, SystemClock};

    use super::*;

    #[tokio::test]
    async fn the_cart_runs_in_a_store_and_a_test_store() {
        use bounds::{CartAction, CartReducer};

        let store = Store::new(bounds::Cart::default(), CartReducer, ());
        store.send(CartAction::Add("tea".into())).await.unwrap();
        assert_eq!(store.state(|cart| cart.items.len()), 1);

        let mut test = TestStore::new(bounds::Cart::default(), CartReducer, ());
        test.send(CartAction::Add("tea".into()), |cart| {
            cart.items = Arc::new(vec!["tea".into()]);
        })
        .await;
        test.finish().await;
    }

    #[test]
    fn each_child_sees_only_its_actions() {
        use one_action::{EmailAction, OrderAction, Shop, ShopAction};

        let shop = one_action::shop();
        let mut state = Shop::default();
        let _ = shop.reduce(&mut state, ShopAction::Order(OrderAction::Place), &());
        let _ = shop.reduce(&mut state, ShopAction::Order(OrderAction::Place), &());
        let _ = shop.reduce(&mut state, ShopAction::Email(EmailAction::Send), &());
        assert_eq!((state.orders, state.emails), (2, 1));
    }

    #[test]
    fn the_account_decides_from_a_command() {
        use aggregate::{Account, AccountCommand, AccountEvent};

        let mut account = Account::default();
        let events = account
            .decide(AccountCommand::Deposit { amount: 250 }, &())
            .unwrap();
        assert_eq!(events, vec![AccountEvent::Deposited { amount: 250 }]);
        for event in &events {
            account.apply(event);
        }
        assert_eq!(account.balance, 250);
    }

    #[tokio::test]
    async fn the_effect_is_send_and_owns_what_it_uses() {
        use effects::{Backup, BackupAction, BackupReducer, Environment};

        let log = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let env = Environment {
            log: Arc::clone(&log),
            clock: Arc::new(SystemClock),
        };
        let store = Store::new(Backup::default(), BackupReducer, env);
        store.send(BackupAction::Start).await.unwrap();
        assert_eq!(store.state(|backup| backup.runs), 1);
        let lines = log.lock().await;
        assert!(lines[0].starts_with("started at "), "{lines:?}");
        assert_eq!(lines[1], "finished");
    }
}
