use composable_rust::postgres::PostgresEventStore;

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").unwrap();
    let _events = PostgresEventStore::connect(&url).await;
}
