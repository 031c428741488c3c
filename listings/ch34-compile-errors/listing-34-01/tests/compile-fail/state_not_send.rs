use std::rc::Rc;

use composable_rust::{Effects, Reducer, Store};

#[derive(Debug, Default)]
struct Cart {
    items: Rc<Vec<String>>, // Rc is not Send
}

#[derive(Debug, Clone)]
enum CartAction {
    Add(String),
}

struct CartReducer;

impl Reducer for CartReducer {
    type State = Cart;
    type Action = CartAction;
    type Environment = ();

    fn reduce(&self, state: &mut Cart, action: CartAction, _: &()) -> Effects<CartAction> {
        match action {
            CartAction::Add(item) => Rc::make_mut(&mut state.items).push(item),
        }
        Effects::new()
    }
}

fn main() {
    let _store = Store::new(Cart::default(), CartReducer, ());
}
