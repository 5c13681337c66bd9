//! The load: many clients placing, paying and cancelling orders and adding
//! blackouts over HTTP, counting what succeeded and what failed.

use super::*;

pub(super) struct Catalog {
    pub(super) vendors: Vec<Uuid>,
    /// (listing, vendor) of sale listings with plenty of stock.
    pub(super) sale: Vec<Uuid>,
    /// (listing, vendor) of rental listings with plenty of units.
    pub(super) rental: Vec<(Uuid, Uuid)>,
}

pub(super) async fn catalog(app: &TestApp) -> Catalog {
    let names: Vec<String> = (0..4).map(|i| format!("Fault vendor {i}")).collect();
    let vendors =
        futures::future::join_all(names.iter().map(|name| app.register_vendor(name))).await;
    let mut sale = Vec::new();
    let mut rental = Vec::new();
    for &vendor in &vendors {
        let sales =
            futures::future::join_all((0..4).map(|_| app.sale_listing(vendor, "7.25", 1_000_000)))
                .await;
        sale.extend(sales);
        let rentals = futures::future::join_all(
            (0..4).map(|_| app.rental_listing(vendor, "day", "19.90", "50.00", 100_000)),
        )
        .await;
        rental.extend(rentals.into_iter().map(|l| (l, vendor)));
    }
    Catalog {
        vendors,
        sale,
        rental,
    }
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) placed: AtomicU64,
    pub(super) paid: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) blackouts: AtomicU64,
    /// Every answer that was not the expected success, with what was sent.
    pub(super) failures: Mutex<Vec<String>>,
}

impl Stats {
    pub(super) fn commands(&self) -> u64 {
        self.placed.load(Ordering::Relaxed)
            + self.paid.load(Ordering::Relaxed)
            + self.cancelled.load(Ordering::Relaxed)
            + self.blackouts.load(Ordering::Relaxed)
    }

    pub(super) fn failures(&self) -> Vec<String> {
        self.failures.lock().expect("not poisoned").clone()
    }

    pub(super) fn summary(&self) -> String {
        format!(
            "placed {}, paid {}, cancelled {}, blackout commands {}, failures {}",
            self.placed.load(Ordering::Relaxed),
            self.paid.load(Ordering::Relaxed),
            self.cancelled.load(Ordering::Relaxed),
            self.blackouts.load(Ordering::Relaxed),
            self.failures().len()
        )
    }
}

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) stats: Arc<Stats>,
}

impl Client {
    /// Sends a command; its answer's body when it answered `expected`.
    pub(super) async fn command(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Option<Value> {
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body: Value = response
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                if status == expected {
                    Some(body)
                } else {
                    self.fail(format!("{what}: {status} {body}"));
                    None
                }
            }
            Err(err) => {
                self.fail(format!("{what}: {err}"));
                None
            }
        }
    }

    pub(super) fn fail(&self, failure: String) {
        let mut failures = self.stats.failures.lock().expect("not poisoned");
        if failures.len() < 50 {
            failures.push(failure);
        } else {
            failures.push(String::new());
        }
    }

    pub(super) fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
    }

    pub(super) async fn pay(&self, order: &Value) -> bool {
        let order_id = order["order_id"].as_str().unwrap_or_default();
        let total: rust_decimal::Decimal = order["total"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_default();
        let minor: i64 = (total * rust_decimal::Decimal::from(100))
            .trunc()
            .to_string()
            .parse()
            .unwrap_or(0);
        let event = format!("evt_{}", Uuid::new_v4().simple());
        let body = json!({
            "id": event,
            "type": "payment_intent.succeeded",
            "data": {"object": {
                "id": format!("pi_{event}"),
                "amount": minor,
                "currency": "usd",
                "metadata": {"order_id": order_id},
            }}
        });
        let raw = serde_json::to_vec(&body).expect("serialise");
        let signature = command_api::routes::webhooks::sign(
            &raw,
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
        );
        let request = self
            .http
            .post(format!("{}/v1/webhooks/payments", self.base))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(raw);
        self.command("pay", request, StatusCode::OK).await.is_some()
    }
}

/// A running load: `CLIENTS` tasks issuing commands until stopped.
pub(super) struct Load {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) tasks: Vec<JoinHandle<()>>,
    pub(super) stats: Arc<Stats>,
}

impl Load {
    pub(super) async fn start(app: &TestApp, seed: u64) -> Load {
        let catalog = Arc::new(catalog(app).await);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let vendor_tokens: Arc<Vec<String>> =
            Arc::new(catalog.vendors.iter().map(|&v| app.vendor(v)).collect());
        let mut tasks = Vec::new();
        for worker in 0..CLIENTS {
            let client = Client {
                http: app.client.clone(),
                base: app.base_url.clone(),
                stats: stats.clone(),
            };
            let token = app.customer(&format!("fault-customer-{worker}"));
            let catalog = catalog.clone();
            let vendor_tokens = vendor_tokens.clone();
            let stop = stop.clone();
            let rng = StdRng::seed_from_u64(seed ^ (worker as u64).wrapping_mul(0x9E37_79B9));
            tasks.push(tokio::spawn(async move {
                client_loop(client, token, catalog, vendor_tokens, stop, rng).await
            }));
        }
        Load { stop, tasks, stats }
    }

    pub(super) async fn finish(self) -> Arc<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load client does not panic");
        }
        self.stats
    }
}

pub(super) async fn client_loop(
    client: Client,
    token: String,
    catalog: Arc<Catalog>,
    vendor_tokens: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
    mut rng: StdRng,
) {
    while !stop.load(Ordering::Relaxed) {
        if rng.gen_ratio(1, 25) {
            // A vendor blocks a unit for a while, and sometimes lifts it again.
            let v = rng.gen_range(0..catalog.rental.len());
            let (listing, vendor) = catalog.rental[v];
            let vendor_index = catalog
                .vendors
                .iter()
                .position(|&x| x == vendor)
                .expect("a known vendor");
            let vendor_token = &vendor_tokens[vendor_index];
            let day = rng.gen_range(0..2_000);
            let body = json!({"start": at(day, 0), "end": at(day + 2, 0), "units": 1,
                              "reason": "maintenance"});
            let added = client
                .command(
                    "add blackout",
                    client.post(
                        &format!("/v1/listings/{listing}/blackouts"),
                        vendor_token,
                        &body,
                    ),
                    StatusCode::CREATED,
                )
                .await;
            if let Some(added) = added {
                client.stats.blackouts.fetch_add(1, Ordering::Relaxed);
                if rng.gen_bool(0.5) {
                    let blackout = added["blackout_id"].as_str().unwrap_or_default();
                    let request = client
                        .http
                        .delete(format!(
                            "{}/v1/listings/{listing}/blackouts/{blackout}",
                            client.base
                        ))
                        .bearer_auth(vendor_token);
                    if client
                        .command("remove blackout", request, StatusCode::OK)
                        .await
                        .is_some()
                    {
                        client.stats.blackouts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            continue;
        }
        // An order of 2 to 6 lines over distinct listings.
        let lines = rng.gen_range(2..=6);
        let mut items = Vec::new();
        let mut used = Vec::new();
        while items.len() < lines {
            if rng.gen_bool(0.5) {
                let listing = catalog.sale[rng.gen_range(0..catalog.sale.len())];
                if used.contains(&listing) {
                    continue;
                }
                used.push(listing);
                items.push(json!({"listing_id": listing, "quantity": rng.gen_range(1..=3)}));
            } else {
                let (listing, _) = catalog.rental[rng.gen_range(0..catalog.rental.len())];
                if used.contains(&listing) {
                    continue;
                }
                used.push(listing);
                let day = rng.gen_range(0..2_000);
                let days = rng.gen_range(1..=5);
                items.push(json!({"listing_id": listing, "quantity": 1,
                                  "start": at(day, 0), "end": at(day + days, 0)}));
            }
        }
        let placed = client
            .command(
                "place order",
                client.post("/v1/orders", &token, &json!({ "items": items })),
                StatusCode::CREATED,
            )
            .await;
        let Some(order) = placed else { continue };
        client.stats.placed.fetch_add(1, Ordering::Relaxed);
        let roll = rng.gen_range(0..100);
        if roll < 25 {
            if client.pay(&order).await {
                client.stats.paid.fetch_add(1, Ordering::Relaxed);
            }
        } else if roll < 40 {
            let order_id = order["order_id"].as_str().unwrap_or_default();
            let cancelled = client
                .command(
                    "cancel order",
                    client.post(
                        &format!("/v1/orders/{order_id}/cancel"),
                        &token,
                        &json!({"reason": "changed my mind"}),
                    ),
                    StatusCode::OK,
                )
                .await;
            if cancelled.is_some() {
                client.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
