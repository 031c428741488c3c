use composable_rust::{Effects, Reducer, combine};

#[derive(Debug, Default)]
struct Shop {
    orders: u32,
    emails: u32,
}

#[derive(Debug, Clone)]
enum OrderAction {
    Place,
}

#[derive(Debug, Clone)]
enum EmailAction {
    Send,
}

struct Orders;

impl Reducer for Orders {
    type State = Shop;
    type Action = OrderAction;
    type Environment = ();

    fn reduce(&self, state: &mut Shop, _: OrderAction, _: &()) -> Effects<OrderAction> {
        state.orders += 1;
        Effects::new()
    }
}

struct Emails;

impl Reducer for Emails {
    type State = Shop;
    type Action = EmailAction;
    type Environment = ();

    fn reduce(&self, state: &mut Shop, _: EmailAction, _: &()) -> Effects<EmailAction> {
        state.emails += 1;
        Effects::new()
    }
}

fn main() {
    let _shop = combine(Orders, Emails);
}
