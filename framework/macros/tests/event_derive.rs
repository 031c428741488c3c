//! `#[derive(Event)]` in use, through the facade as an application uses it:
//! the type names it lists are exactly the names serde writes (for every
//! `rename_all` rule serde has), and the versions are the ones the codec
//! stores.

use composable_rust::event::encode;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

/// The type name serde writes for `event`, as the event store keeps it.
fn written<E: Event>(event: &E) -> String {
    encode(event).expect("encodes").event_type
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum AccountEvent {
    Opened {
        owner: String,
    },
    #[event(version = 2)]
    MoneyDeposited {
        amount_cents: i64,
    },
    #[serde(rename = "account.closed")]
    #[event(version = 3)]
    Closed,
    Noted(String),
    #[serde(skip)]
    #[allow(dead_code)]
    NeverStored,
}

#[test]
fn lists_type_names_in_declaration_order_without_skipped_variants() {
    assert_eq!(
        AccountEvent::event_types(),
        ["Opened", "MoneyDeposited", "account.closed", "Noted"]
    );
}

#[test]
fn versions_are_the_ones_stored_with_each_event() {
    let cases = [
        (
            AccountEvent::Opened {
                owner: "Ada".into(),
            },
            1,
        ),
        (AccountEvent::MoneyDeposited { amount_cents: 5 }, 2),
        (AccountEvent::Closed, 3),
        (AccountEvent::Noted("hi".into()), 1),
    ];
    for (event, version) in cases {
        let encoded = encode(&event).unwrap();
        assert_eq!(encoded.schema_version, version, "{event:?}");
        assert!(AccountEvent::event_types().contains(&encoded.event_type.as_str()));
    }
    assert_eq!(AccountEvent::schema_version("no such type"), 1);
}

/// One enum per serde rule, each with the same variants, checked against
/// what serde really writes.
macro_rules! rename_all_matches_serde {
    ($($test:ident: $rule:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            #[derive(Debug, Serialize, Deserialize, Event)]
            #[serde(rename_all = $rule)]
            enum E {
                Opened,
                MoneyDeposited { cents: i64 },
                #[serde(rename = "Kept")]
                KeptAsWritten(u8),
                #[allow(non_camel_case_types)]
                r#Loop,
                HTTPCall,
                V2Started,
            }
            let events = [
                E::Opened,
                E::MoneyDeposited { cents: 1 },
                E::KeptAsWritten(1),
                E::r#Loop,
                E::HTTPCall,
                E::V2Started,
            ];
            let written: Vec<String> = events.iter().map(written).collect();
            assert_eq!(E::event_types(), written, "rule {}", $rule);
        }
    )*};
}

rename_all_matches_serde! {
    lowercase_matches_serde: "lowercase",
    uppercase_matches_serde: "UPPERCASE",
    pascal_case_matches_serde: "PascalCase",
    camel_case_matches_serde: "camelCase",
    snake_case_matches_serde: "snake_case",
    screaming_snake_case_matches_serde: "SCREAMING_SNAKE_CASE",
    kebab_case_matches_serde: "kebab-case",
    screaming_kebab_case_matches_serde: "SCREAMING-KEBAB-CASE",
}

#[test]
fn serialize_and_deserialize_names_that_agree_are_accepted() {
    #[derive(Debug, Serialize, Deserialize, Event)]
    #[serde(rename_all(serialize = "kebab-case", deserialize = "kebab-case"))]
    enum E {
        #[serde(rename(serialize = "it.happened", deserialize = "it.happened"))]
        Happened,
        AlsoHappened,
    }
    assert_eq!(
        E::event_types(),
        [written(&E::Happened), written(&E::AlsoHappened)]
    );
}

/// A generic event enum: the derive keeps its parameters and bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum Wrapped<T> {
    #[event(version = 4)]
    Value(T),
}

#[test]
fn generic_enums_are_supported() {
    let encoded = encode(&Wrapped::Value(7_u8)).unwrap();
    assert_eq!(
        (encoded.event_type.as_str(), encoded.schema_version),
        ("Value", 4)
    );
    assert_eq!(Wrapped::<String>::event_types(), ["Value"]);
}

/// A crate depending on the core directly names it with `crate = ...`
/// (here the facade's re-export of the core stands in for it).
mod core_only {
    use composable_rust::core as composable_rust_core;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, composable_rust::Event)]
    #[event(crate = composable_rust_core)]
    pub(super) enum CoreEvent {
        #[event(version = 2)]
        Happened,
    }
}

#[test]
fn the_crate_path_can_be_overridden() {
    use composable_rust::core::Event as _;
    assert_eq!(core_only::CoreEvent::schema_version("Happened"), 2);
    assert_eq!(written(&core_only::CoreEvent::Happened), "Happened");
}

#[tokio::test]
async fn events_load_back_with_the_version_the_derive_gives() {
    let store = composable_rust::InMemoryEventStore::new();
    let stream = StreamId::new("account-1").unwrap();
    let event =
        composable_rust::NewEvent::from_event(&AccountEvent::MoneyDeposited { amount_cents: 9 })
            .unwrap();
    assert_eq!(event.schema_version, 2);
    store
        .append(
            &stream,
            composable_rust::ExpectedVersion::NoStream,
            vec![event],
        )
        .await
        .unwrap();
    let stored = store.load_stream(&stream, 0).await.unwrap();
    assert_eq!(stored[0].schema_version, 2);
    let back: Vec<AccountEvent> =
        composable_rust::event::decode_all(&stored, &composable_rust::Upcasters::new()).unwrap();
    assert_eq!(back, [AccountEvent::MoneyDeposited { amount_cents: 9 }]);
}
