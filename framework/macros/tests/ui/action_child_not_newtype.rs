// #[child] wraps exactly one child action.
use composable_rust::Action;

#[derive(Action)]
enum AccountsAction {
    #[command]
    Deposit { amount: u64 },
}

#[derive(Action)]
enum BankAction {
    #[child]
    Accounts { action: AccountsAction, at: u64 },
}

fn main() {}
