//! The shop's load test: how many orders per second the whole service
//! (HTTP, validation, the order aggregate, the event store) accepts,
//! compared with what the event store alone accepts on the same machine,
//! and what a customer waits at half that rate.
//!
//! ```text
//! cargo run --profile bench -p ecommerce --bin loadtest [-- --url http://127.0.0.1:8080]
//!     [--requests N] [--duration SECONDS] [--concurrency C] [--schema shop]
//! ```
//!
//! Four phases, each bounded by a request count AND a duration:
//!
//! 1. baseline: single-event appends to fresh streams on the framework's
//!    PostgreSQL event store, in a schema of its own, at the same
//!    concurrency: the raw write rate of this machine, measured in this run;
//!    then the same appends, each behind one request to a bare HTTP route
//!    in this process: the ceiling of any endpoint that writes an event;
//! 2. peak: `POST /v1/orders` by `C` clients in a closed loop, each order
//!    for a customer registered with a filled cart beforehand;
//!    Then it waits until every one of those checkouts has finished (the
//!    saga and the read models work off the peak's backlog), and reports
//!    the checkouts' own rate, drain included;
//! 3. half peak: orders sent on a fixed schedule at half the peak rate
//!    (open loop: latency includes any queueing), p50 and p99 latency;
//! 4. projection lag, during phase 3: for each order, the time from its 201
//!    to its document in the order-history read model (one query every
//!    2 ms for all the orders not seen yet, on a connection of its own; the
//!    resolution is that interval plus the query).
//!
//! Without `--url` it starts the shop in this process on a free port, in a
//! PostgreSQL schema and under a Redis key prefix of its own, removed after
//! the run; with `--url` it talks to a running shop, which must be on
//! 127.0.0.1 (a load test is never pointed at someone else's server) and
//! whose schema `--schema` names (for the read model of phase 4).
//! `DATABASE_URL` is needed either way (phases 1 and 4), `REDIS_URL`
//! without `--url`.
//!
//! `COMPOSABLE_BENCH_SMOKE=1` (CI) runs a hundred orders per phase for at
//! most three seconds each, and prints that its figures are not
//! measurements. An order answered with anything but 201 (503 overload
//! aside) fails the run, smoke or not.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use composable_rust::postgres::{DocumentTable, PostgresEventStore, PostgresProjectionStore};
use composable_rust::prelude::*;
use composable_rust::{EventMetadata, ExpectedVersion, NewEvent};
use composable_rust_testing::bench;
use composable_rust_testing::fixtures::{TestKeyPrefix, TestSchema};
use composable_rust_testing::services;
use ecommerce::client::{ClientError, ShopClient, order_request};
use ecommerce::domain::order::order_stream;
use ecommerce::{Config, RunningShop};
use reqwest::StatusCode;
use tokio::task::JoinSet;
use uuid::Uuid;

/// Orders per phase (and appends in the baseline) in a full run.
const REQUESTS: usize = 3_000;
/// The longest a phase runs in a full run.
const DURATION: Duration = Duration::from_secs(20);
/// Concurrent clients (and appending tasks).
const CONCURRENCY: usize = 16;
/// A smoke run's orders per phase and longest phase.
const SMOKE_REQUESTS: usize = 100;
const SMOKE_DURATION: Duration = Duration::from_secs(3);
/// How often phase 4 looks for an order in the read model.
const LAG_POLL: Duration = Duration::from_millis(2);
/// An order not in the read model after this is a failure, not a figure.
const LAG_GIVE_UP: Duration = Duration::from_secs(10);
/// The products the customers order, spread so that the checkouts do not
/// all contend for one stock stream.
const PRODUCTS: &[&str] = &[
    "espresso-cup",
    "pour-over",
    "grinder",
    "kettle",
    "beans-1kg",
    "scale",
];

/// The longest the checkouts of the peak phase may take to finish.
const DRAIN_GIVE_UP: Duration = Duration::from_secs(180);

/// The targets the run is judged against.
const TARGET_RATIO: f64 = 0.5;
const TARGET_P99_MS: f64 = 50.0;
const TARGET_LAG_P99_MS: f64 = 100.0;

/// Why the load test could not run, or failed.
#[derive(Debug, thiserror::Error)]
enum LoadTestError {
    /// The command line is wrong.
    #[error(
        "{0}\nusage: loadtest [--url http://127.0.0.1:PORT] [--requests N] [--duration SECONDS] [--concurrency C] [--schema NAME]"
    )]
    Usage(String),
    /// `--url` names a host other than 127.0.0.1.
    #[error("--url {0:?} is not http://127.0.0.1:PORT: the load test only talks to this machine")]
    NotLocal(String),
    /// A service the test needs is not configured.
    #[error(transparent)]
    MissingService(#[from] services::MissingService),
    /// Setting up (the shop, the baseline store, the customers) failed.
    #[error("setup failed: {what}: {cause}")]
    Setup {
        /// What was being set up.
        what: &'static str,
        /// Why it failed.
        cause: String,
    },
    /// Orders were refused or lost during the run.
    #[error("{0} (see the figures above)")]
    Failed(String),
}

impl LoadTestError {
    fn setup(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Setup {
            what,
            cause: cause.to_string(),
        }
    }
}

/// The command line.
#[derive(Debug)]
struct Args {
    url: Option<String>,
    requests: usize,
    duration: Duration,
    concurrency: usize,
    schema: String,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, LoadTestError> {
    let smoke = bench::smoke();
    let mut parsed = Args {
        url: None,
        requests: if smoke { SMOKE_REQUESTS } else { REQUESTS },
        duration: if smoke { SMOKE_DURATION } else { DURATION },
        concurrency: CONCURRENCY,
        schema: "shop".to_owned(),
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| LoadTestError::Usage(format!("{flag} needs a value")))
        };
        let number = |text: String| {
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    LoadTestError::Usage(format!("{flag} {text:?}: not a positive integer"))
                })
        };
        match flag.as_str() {
            "--url" => parsed.url = Some(value()?),
            "--requests" => parsed.requests = number(value()?)?,
            "--duration" => parsed.duration = Duration::from_secs(number(value()?)? as u64),
            "--concurrency" => parsed.concurrency = number(value()?)?,
            "--schema" => parsed.schema = value()?,
            other => return Err(LoadTestError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(parsed)
}

/// The address of `url` if it is `http://127.0.0.1:PORT` (a trailing `/`
/// allowed).
fn local_address(url: &str) -> Result<SocketAddr, LoadTestError> {
    url.strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|authority| authority.parse::<SocketAddr>().ok())
        .filter(|address| address.ip() == std::net::Ipv4Addr::LOCALHOST)
        .ok_or_else(|| LoadTestError::NotLocal(url.to_owned()))
}

#[tokio::main]
async fn main() -> ExitCode {
    bench::banner("the ecommerce load test");
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The shop under test: started here (and its places removed after), or
/// running elsewhere on this machine.
enum Target {
    InProcess {
        shop: RunningShop,
        schema: TestSchema,
        _prefix: TestKeyPrefix,
    },
    External {
        schema: String,
    },
}

impl Target {
    fn schema(&self) -> &str {
        match self {
            Self::InProcess { schema, .. } => schema.name(),
            Self::External { schema } => schema,
        }
    }
}

async fn run(args: Args) -> Result<(), LoadTestError> {
    let database_url = services::try_database_url()?;
    let (base_url, target) = match &args.url {
        Some(url) => {
            let address = local_address(url)?;
            (
                format!("http://{address}"),
                Target::External {
                    schema: args.schema.clone(),
                },
            )
        }
        None => {
            let schema = TestSchema::from_url(database_url.clone());
            let prefix = TestKeyPrefix::from_url(services::try_redis_url()?);
            // A secret of this run only: the tokens die with it.
            let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
            let config = Config::new(database_url.clone(), prefix.url(), secret.into_bytes())
                .with_bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .with_schema(schema.name())
                .with_redis_prefix(prefix.as_str());
            let shop = ecommerce::start(config)
                .await
                .map_err(|error| LoadTestError::setup("start the shop", error))?;
            (
                shop.base_url(),
                Target::InProcess {
                    shop,
                    schema,
                    _prefix: prefix,
                },
            )
        }
    };
    let shop = match &target {
        Target::InProcess { shop, .. } => Some(shop),
        Target::External { .. } => None,
    };
    let result = measure(&args, shop, &database_url, &base_url, target.schema()).await;
    if let Target::InProcess { shop, schema, .. } = target {
        let _report = shop.shutdown().await;
        // Dropped here, after the shop: the schema and keys go with them.
        drop(schema);
    }
    result
}

/// The figures of one run.
#[derive(Debug, Default)]
struct Figures {
    baseline: Rate,
    http_baseline: Rate,
    peak: Rate,
    peak_latency_ms: Vec<f64>,
    drain: Option<Duration>,
    half: Rate,
    half_latency_ms: Vec<f64>,
    lag_ms: Vec<f64>,
    overloaded: usize,
    failures: Vec<String>,
}

/// A count over a time.
#[derive(Debug, Default, Clone, Copy)]
struct Rate {
    count: usize,
    elapsed: Duration,
}

impl Rate {
    fn per_second(self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

async fn measure(
    args: &Args,
    shop: Option<&RunningShop>,
    database_url: &str,
    base_url: &str,
    schema: &str,
) -> Result<(), LoadTestError> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 4)
        .build()
        .map_err(|error| LoadTestError::setup("build the HTTP client", error))?;
    let client = ShopClient::with_http(base_url, http.clone());
    let mut figures = Figures::default();

    println!(
        "ecommerce load test: {} cores, concurrency {}, up to {} orders and {:?} per phase, shop at {base_url}{}",
        std::thread::available_parallelism().map_or(0, usize::from),
        args.concurrency,
        args.requests,
        args.duration,
        bench::label()
    );

    figures.baseline = baseline(database_url, args).await?;
    figures.http_baseline = http_baseline(database_url, args, &http).await?;

    // Customers with a filled cart for both order phases, made before
    // either is timed.
    let started = Instant::now();
    let customers = prepare_customers(&client, args.requests * 2, args.concurrency).await?;
    println!(
        "setup: {} customers registered with a filled cart in {:.1} s",
        customers.len(),
        started.elapsed().as_secs_f64()
    );
    let (peak_customers, half_customers) = customers.split_at(customers.len() / 2);

    let placed = peak(peak_customers, args, &mut figures).await;
    match drain(shop, &placed).await {
        Ok(took) => figures.drain = Some(took),
        Err(why) => figures
            .failures
            .push(format!("draining the peak's checkouts: {why}")),
    }
    let half_rate = figures.peak.per_second() / 2.0;
    let read_model = read_model(database_url, schema).await?;
    half_peak(half_customers, half_rate, args, read_model, &mut figures).await;

    report(&figures, half_rate);
    if figures.failures.is_empty() {
        Ok(())
    } else {
        for failure in figures.failures.iter().take(10) {
            eprintln!("  {failure}");
        }
        Err(LoadTestError::Failed(format!(
            "{} order(s) failed",
            figures.failures.len()
        )))
    }
}

/// Phase 1: single-event appends to fresh streams at the same
/// concurrency, on the framework's PostgreSQL event store, in a schema of
/// its own.
async fn baseline(database_url: &str, args: &Args) -> Result<Rate, LoadTestError> {
    let baseline = BaselineStore::open(database_url, args).await?;
    let appender = Arc::clone(&baseline.store);
    let rate = closed_loop(args, move || {
        let store = Arc::clone(&appender);
        async move { append_one(&store).await.map_err(|error| error.to_string()) }
    })
    .await;
    baseline.close().await?;
    rate.map_err(|error| LoadTestError::setup("append in the baseline", error))
}

/// Phase 1, over HTTP: the same appends, each behind one request to a
/// bare route of a server in this process (no authentication, no
/// validation, no read, no saga running), sent by the same HTTP client at
/// the same concurrency. The most that any endpoint writing one event can
/// accept on this machine, measured in this run: the ceiling of placing
/// an order, which writes more.
async fn http_baseline(
    database_url: &str,
    args: &Args,
    http: &reqwest::Client,
) -> Result<Rate, LoadTestError> {
    let baseline = BaselineStore::open(database_url, args).await?;
    let app = axum::Router::new()
        .route("/append", axum::routing::post(append_route))
        .with_state(Arc::clone(&baseline.store));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|error| LoadTestError::setup("bind the bare server", error))?;
    let url = format!(
        "http://{}/append",
        listener
            .local_addr()
            .map_err(|error| LoadTestError::setup("bind the bare server", error))?
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = http.clone();
    let rate = closed_loop(args, move || {
        let (http, url) = (client.clone(), url.clone());
        async move {
            let answer = http.post(&url).send().await.map_err(|e| e.to_string())?;
            match answer.status() {
                StatusCode::CREATED => Ok(()),
                status => Err(format!("the bare route answered {status}")),
            }
        }
    })
    .await;
    server.abort();
    baseline.close().await?;
    rate.map_err(|error| LoadTestError::setup("append over HTTP in the baseline", error))
}

/// A `PostgresEventStore` on a schema of its own, migrated, with a pool
/// of one connection per client; [`close`](Self::close) drops the schema.
struct BaselineStore {
    store: Arc<PostgresEventStore>,
    schema: TestSchema,
}

impl BaselineStore {
    async fn open(database_url: &str, args: &Args) -> Result<Self, LoadTestError> {
        let schema = TestSchema::from_url(database_url.to_owned());
        let pool = PostgresEventStore::pool_options()
            .max_connections(u32::try_from(args.concurrency).unwrap_or(u32::MAX))
            .connect(database_url)
            .await
            .map_err(|error| LoadTestError::setup("connect to PostgreSQL", error))?;
        let store = PostgresEventStore::new(pool)
            .with_schema(schema.name())
            .map_err(|error| LoadTestError::setup("use the baseline schema", error))?;
        store
            .migrate()
            .await
            .map_err(|error| LoadTestError::setup("migrate the baseline schema", error))?;
        Ok(Self {
            store: Arc::new(store),
            schema,
        })
    }

    /// Drops the store (its pool), then its schema.
    async fn close(self) -> Result<(), LoadTestError> {
        drop(self.store);
        self.schema
            .drop_now()
            .await
            .map_err(|error| LoadTestError::setup("drop the baseline schema", error))
    }
}

/// One event appended to a fresh stream: what the baselines measure.
async fn append_one(store: &PostgresEventStore) -> Result<(), composable_rust::EventStoreError> {
    let stream = StreamId::new(format!("baseline-{}", Uuid::new_v4().simple()))?;
    let event = NewEvent::new(
        "order.placed",
        serde_json::json!({"customer_id": Uuid::new_v4(), "total_cents": 4_500}),
    )
    .with_metadata(EventMetadata::default());
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .map(|_| ())
}

/// The bare route of [`http_baseline`]: one append, `201` when written.
async fn append_route(
    axum::extract::State(store): axum::extract::State<Arc<PostgresEventStore>>,
) -> StatusCode {
    match append_one(&store).await {
        Ok(()) => StatusCode::CREATED,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Runs `operation` from `args.concurrency` tasks back to back until
/// `args.requests` were started or `args.duration` is over; how many
/// succeeded in how long, or the first failure.
async fn closed_loop<F, O>(args: &Args, operation: F) -> Result<Rate, String>
where
    F: Fn() -> O + Clone + Send + 'static,
    O: Future<Output = Result<(), String>> + Send,
{
    let claimed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = JoinSet::new();
    for _ in 0..args.concurrency {
        let (operation, claimed) = (operation.clone(), Arc::clone(&claimed));
        let requests = args.requests;
        tasks.spawn(async move {
            let mut done = 0_usize;
            while Instant::now() < deadline && claimed.fetch_add(1, Ordering::Relaxed) < requests {
                operation().await?;
                done += 1;
            }
            Ok::<usize, String>(done)
        });
    }
    let mut count = 0;
    while let Some(joined) = tasks.join_next().await {
        count += joined.map_err(|error| error.to_string())??;
    }
    Ok(Rate {
        count,
        elapsed: started.elapsed(),
    })
}

/// A registered customer whose cart holds one product.
#[derive(Debug, Clone)]
struct Customer {
    id: Uuid,
    client: ShopClient,
}

async fn prepare_customers(
    client: &ShopClient,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Customer>, LoadTestError> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut made = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, ClientError>(made);
                }
                let registered = client
                    .register(&format!("Load {n}"), &format!("load-{n}@example.com"))
                    .await?;
                let customer = client.with_token(registered.token);
                customer
                    .add_to_cart(PRODUCTS[n % PRODUCTS.len()], 1)
                    .await?;
                made.push(Customer {
                    id: registered.customer_id,
                    client: customer,
                });
            }
        });
    }
    let mut customers = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        customers.extend(
            joined
                .map_err(|error| LoadTestError::setup("prepare customers", error))?
                .map_err(|error| {
                    LoadTestError::setup("register a customer and fill its cart", error)
                })?,
        );
    }
    Ok(customers)
}

/// What one order request came to.
enum Placed {
    /// 201: the order and when the answer arrived.
    Created(Uuid, Instant),
    /// 503: shed by the overload limit (retryable, nothing written).
    Overloaded,
    /// Anything else.
    Failed(String),
}

async fn place(customer: &Customer) -> Placed {
    let key = Uuid::new_v4().simple().to_string();
    match customer
        .client
        .place_order(&key, &order_request("tok_loadtest"))
        .await
    {
        Ok((StatusCode::CREATED, placed)) => Placed::Created(placed.order_id, Instant::now()),
        Ok((status, _)) => Placed::Failed(format!("customer {}: {status}, not 201", customer.id)),
        Err(error) if error.status() == Some(StatusCode::SERVICE_UNAVAILABLE) => Placed::Overloaded,
        Err(error) => Placed::Failed(format!("customer {}: {error}", customer.id)),
    }
}

/// Phase 2: `concurrency` clients place orders back to back.
async fn peak(customers: &[Customer], args: &Args, figures: &mut Figures) -> Vec<(Customer, Uuid)> {
    let customers: Arc<Vec<Customer>> = Arc::new(customers.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = JoinSet::new();
    for _ in 0..args.concurrency {
        let customers = Arc::clone(&customers);
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            while Instant::now() < deadline {
                let Some(customer) = customers.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let sent = Instant::now();
                let placed = place(customer).await;
                outcomes.push((customer.clone(), placed, sent.elapsed()));
            }
            outcomes
        });
    }
    let mut created = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        for (customer, outcome, latency) in joined.unwrap_or_default() {
            match outcome {
                Placed::Created(order_id, _) => {
                    figures.peak_latency_ms.push(latency.as_secs_f64() * 1e3);
                    created.push((customer, order_id));
                }
                Placed::Overloaded => figures.overloaded += 1,
                Placed::Failed(why) => figures.failures.push(why),
            }
        }
    }
    figures.peak = Rate {
        count: created.len(),
        elapsed: started.elapsed(),
    };
    created
}

/// Waits until every order of the peak phase has finished its checkout,
/// so the half-peak phase does not run while the saga and the projections
/// still work off the peak's backlog; returns how long that took after
/// the peak phase ended. In process the shop's own wait (woken by the
/// event store's notifications) is used; against `--url`, each order is
/// read back over HTTP until it is shipped or cancelled.
async fn drain(
    shop: Option<&RunningShop>,
    orders: &[(Customer, Uuid)],
) -> Result<Duration, String> {
    let started = Instant::now();
    for (customer, order_id) in orders {
        let left = DRAIN_GIVE_UP.saturating_sub(started.elapsed());
        match shop {
            Some(shop) => {
                shop.wait_for_checkout(*order_id, left)
                    .await
                    .map_err(|error| error.to_string())?;
            }
            None => loop {
                let order = customer
                    .client
                    .order(*order_id)
                    .await
                    .map_err(|error| error.to_string())?;
                if order.status.is_final() {
                    break;
                }
                if started.elapsed() >= DRAIN_GIVE_UP {
                    return Err(format!(
                        "order {order_id} is still {:?} {DRAIN_GIVE_UP:?} after the peak phase",
                        order.status
                    ));
                }
                // Another process's shop: no notification reaches us, so
                // the order is read again shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
            },
        }
    }
    Ok(started.elapsed())
}

/// The order-history read model, and a small pool of its own to read it.
async fn read_model(
    database_url: &str,
    schema: &str,
) -> Result<(DocumentTable, sqlx::PgPool), LoadTestError> {
    let pool = PostgresEventStore::pool_options()
        .max_connections(2)
        .connect(database_url)
        .await
        .map_err(|error| LoadTestError::setup("connect to PostgreSQL", error))?;
    let store = PostgresProjectionStore::new(pool.clone())
        .with_schema(schema)
        .map_err(|error| LoadTestError::setup("use the shop's schema", error))?;
    let table = DocumentTable::new(&store, ecommerce::projections::order_history::TABLE)
        .map_err(|error| LoadTestError::setup("name the order-history table", error))?;
    Ok((table, pool))
}

/// Phases 3 and 4: orders on a fixed schedule at `rate` per second; each
/// one's latency, and the time from its 201 to its read-model document.
async fn half_peak(
    customers: &[Customer],
    rate: f64,
    args: &Args,
    read_model: (DocumentTable, sqlx::PgPool),
    figures: &mut Figures,
) {
    if rate <= 0.0 {
        figures
            .failures
            .push("no order succeeded at peak: nothing to pace".to_owned());
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let planned = customers
        .len()
        .min((rate * args.duration.as_secs_f64()).ceil() as usize)
        .max(1);
    let (answered, watched) = tokio::sync::mpsc::unbounded_channel();
    let (table, pool) = read_model;
    let watcher = tokio::spawn(watch_lag(table, pool, watched));
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for (n, customer) in customers.iter().take(planned).enumerate() {
        // The schedule, not the answers, sets when each order goes out
        // (open loop): a slow answer does not slow the offered load.
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due).await;
        let customer = customer.clone();
        let answered = answered.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let placed = place(&customer).await;
            let latency = sent.elapsed();
            if let Placed::Created(order_id, at) = &placed {
                // The watcher outlives every order task.
                let _ = answered.send((*order_id, *at));
            }
            (placed, latency)
        });
    }
    let sent_in = started.elapsed();
    let mut created = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((placed, latency)) = joined else {
            figures.failures.push("an order task panicked".to_owned());
            continue;
        };
        match placed {
            Placed::Created(..) => {
                created += 1;
                figures.half_latency_ms.push(latency.as_secs_f64() * 1e3);
            }
            Placed::Overloaded => figures.overloaded += 1,
            Placed::Failed(why) => figures.failures.push(why),
        }
    }
    drop(answered);
    match watcher.await {
        Ok((lags, failures)) => {
            figures.lag_ms = lags;
            figures.failures.extend(failures);
        }
        Err(error) => figures
            .failures
            .push(format!("the lag watcher failed: {error}")),
    }
    figures.half = Rate {
        count: created,
        elapsed: sent_in,
    };
}

/// Phase 4: one task watches the order-history table for every order
/// answered 201 (sent on `answered`), with one query per [`LAG_POLL`] for
/// all of them, so the watching costs the shop little whatever the rate;
/// returns each order's lag, or why it never showed.
async fn watch_lag(
    read_model: DocumentTable,
    pool: sqlx::PgPool,
    mut answered: tokio::sync::mpsc::UnboundedReceiver<(Uuid, Instant)>,
) -> (Vec<f64>, Vec<String>) {
    // The table name comes from the framework, validated and quoted.
    let select = format!(
        "SELECT id FROM {} WHERE id = ANY($1)",
        read_model.qualified_name()
    );
    let mut pending: std::collections::HashMap<String, (Uuid, Instant)> =
        std::collections::HashMap::new();
    let mut lags = Vec::new();
    let mut failures = Vec::new();
    let mut open = true;
    while open || !pending.is_empty() {
        if pending.is_empty() {
            // Nothing to look for: wait for the next 201 (or the end).
            match answered.recv().await {
                Some((order_id, at)) => add_pending(&mut pending, order_id, at),
                None => open = false,
            }
            continue;
        }
        loop {
            match answered.try_recv() {
                Ok((order_id, at)) => add_pending(&mut pending, order_id, at),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let ids: Vec<String> = pending.keys().cloned().collect();
        match sqlx::query_scalar::<_, String>(&select)
            .bind(&ids)
            .fetch_all(&pool)
            .await
        {
            Ok(found) => {
                for id in found {
                    if let Some((_, at)) = pending.remove(&id) {
                        lags.push(at.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            Err(error) => {
                failures.push(format!("reading the order history: {error}"));
                return (lags, failures);
            }
        }
        pending.retain(|_, (order_id, at)| {
            let waiting = at.elapsed() < LAG_GIVE_UP;
            if !waiting {
                failures.push(format!(
                    "order {order_id} not in the order history {LAG_GIVE_UP:?} after its 201"
                ));
            }
            waiting
        });
        tokio::time::sleep(LAG_POLL).await;
    }
    (lags, failures)
}

fn add_pending(
    pending: &mut std::collections::HashMap<String, (Uuid, Instant)>,
    order_id: Uuid,
    at: Instant,
) {
    if let Ok(stream) = order_stream(order_id) {
        pending.insert(stream.as_str().to_owned(), (order_id, at));
    }
}

/// The `q` quantile (0..=1) of `values`, nearest rank; 0 when empty.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn verdict(met: bool) -> &'static str {
    bench::judged(if met { "met" } else { "MISSED" })
}

fn report(figures: &Figures, half_rate: f64) {
    let label = bench::label();
    let p50 = quantile(&figures.half_latency_ms, 0.5);
    let p99 = quantile(&figures.half_latency_ms, 0.99);
    let lag50 = quantile(&figures.lag_ms, 0.5);
    let lag99 = quantile(&figures.lag_ms, 0.99);
    println!();
    println!(
        "{:<44} {:>8} {:>8} {:>9} {:>8} {:>8}",
        "phase", "count", "seconds", "per s", "p50 ms", "p99 ms"
    );
    let row = |name: &str, rate: Rate, quantiles: Option<(f64, f64)>| {
        let (p50, p99) = quantiles.map_or((String::new(), String::new()), |(a, b)| {
            (format!("{a:.1}"), format!("{b:.1}"))
        });
        println!(
            "{:<44} {:>8} {:>8.2} {:>9.0} {:>8} {:>8}{label}",
            name,
            rate.count,
            rate.elapsed.as_secs_f64(),
            rate.per_second(),
            p50,
            p99
        );
    };
    row("(a) raw event-store appends", figures.baseline, None);
    row(
        "(a') the same, one bare HTTP request each",
        figures.http_baseline,
        None,
    );
    row(
        "(b) place order, peak",
        figures.peak,
        Some((
            quantile(&figures.peak_latency_ms, 0.5),
            quantile(&figures.peak_latency_ms, 0.99),
        )),
    );
    if let Some(drain) = figures.drain {
        let whole = figures.peak.elapsed + drain;
        println!(
            "{:<44} {:>8} {:>8.2} {:>9.0}{label}",
            "    their checkouts, finished (incl. drain)",
            figures.peak.count,
            whole.as_secs_f64(),
            figures.peak.count as f64 / whole.as_secs_f64().max(f64::MIN_POSITIVE),
        );
    }
    row(
        &format!("(c) place order at half peak ({half_rate:.0}/s)"),
        figures.half,
        Some((p50, p99)),
    );
    println!(
        "{:<44} {:>8} {:>8} {:>9} {:>8.1} {:>8.1}{label}",
        "(d) projection lag, 201 to order history",
        figures.lag_ms.len(),
        "",
        "",
        lag50,
        lag99
    );
    if figures.overloaded > 0 {
        println!(
            "503 overload answers (not counted above): {}",
            figures.overloaded
        );
    }
    let ratio = figures.peak.per_second() / figures.baseline.per_second().max(f64::MIN_POSITIVE);
    println!();
    println!(
        "{:<44} {:>10} {:>10}  verdict",
        "target", "figure", "target"
    );
    println!(
        "{:<44} {:>10.2} {:>10}  {}{label}",
        "place-order / raw-append",
        ratio,
        format!(">= {TARGET_RATIO}"),
        verdict(ratio >= TARGET_RATIO)
    );
    let ceiling =
        figures.http_baseline.per_second() / figures.baseline.per_second().max(f64::MIN_POSITIVE);
    println!(
        "{:<44} {:>10.2} {:>10}  (the ceiling of (b): one event, no order){label}",
        "    bare HTTP append / raw-append", ceiling, ""
    );
    println!(
        "{:<44} {:>10} {:>10}  {}{label}",
        "p99 latency at half peak",
        format!("{p99:.1} ms"),
        format!("< {TARGET_P99_MS} ms"),
        verdict(!figures.half_latency_ms.is_empty() && p99 < TARGET_P99_MS)
    );
    println!(
        "{:<44} {:>10} {:>10}  {}{label}",
        "projection lag p99",
        format!("{lag99:.1} ms"),
        format!("< {TARGET_LAG_P99_MS} ms"),
        verdict(!figures.lag_ms.is_empty() && lag99 < TARGET_LAG_P99_MS)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_127_0_0_1_is_accepted() {
        assert!(local_address("http://127.0.0.1:8080").is_ok());
        assert!(local_address("http://127.0.0.1:8080/").is_ok());
        for url in [
            "http://localhost:8080",
            "http://10.0.0.1:8080",
            "https://127.0.0.1:8080",
            "http://127.0.0.1",
            "http://example.com:80",
        ] {
            assert!(local_address(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn flags_override_the_defaults() {
        let args = parse_args(
            ["--requests", "7", "--concurrency", "3", "--duration", "2"]
                .into_iter()
                .map(String::from),
        )
        .unwrap();
        assert_eq!((args.requests, args.concurrency), (7, 3));
        assert_eq!(args.duration, Duration::from_secs(2));
        assert!(parse_args(["--requests", "0"].into_iter().map(String::from)).is_err());
        assert!(parse_args(["--bogus"].into_iter().map(String::from)).is_err());
    }
}
