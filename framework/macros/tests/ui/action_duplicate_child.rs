// Two children of one type: `From<AccountsAction>` could build either.
use composable_rust::Action;

#[derive(Action)]
enum AccountsAction {
    #[command]
    Deposit { amount: u64 },
}

#[derive(Action)]
enum BankAction {
    #[child]
    Accounts(AccountsAction),
    #[child]
    Teller(AccountsAction),
}

fn main() {}
