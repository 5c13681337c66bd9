//! The random marketplace's leases (issue 15 item 3): day rentals of two to
//! four months paid by a deposit and monthly instalments. Each is paid
//! upfront; some pay their first instalment at once, the others leave it to
//! fall due as the clock moves through the year with the rentals, and go
//! through dunning (overdue, suspended, terminated, written off). The
//! checker then finds every cent of them as the log says.

use std::sync::atomic::AtomicUsize;

use ledger_tests::answer::money;
use ledger_tests::webhooks::{minor_units, SUCCEEDED};
use ledger_tests::{at, TestApp};
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{expect, post, Tally};

/// How the leases went.
#[derive(Default)]
pub(super) struct LeaseTally {
    pub(super) placed: AtomicUsize,
    pub(super) unavailable: AtomicUsize,
    pub(super) first_paid: AtomicUsize,
}

/// Places `count` leases on the day-priced rentals among `listings`.
pub(super) async fn drive(
    app: &TestApp,
    rng: &mut StdRng,
    listings: &[Uuid],
    count: usize,
    tally: &LeaseTally,
) {
    if listings.is_empty() {
        return;
    }
    for n in 0..count {
        let listing = listings[rng.gen_range(0..listings.len())];
        let instalments: u32 = rng.gen_range(1..=3);
        let start = rng.gen_range(0..200);
        // A month a instalment, and some days more.
        let days = 31 * i64::from(instalments) + rng.gen_range(5..=25);
        let deposit = format!("{}.00", rng.gen_range(1..=50));
        let customer = app.customer(&format!("lessee-{n}"));
        let placed = post(
            app,
            "/v1/orders",
            &customer,
            json!({"items": [{"listing_id": listing, "quantity": 1,
                   "start": at(start, 10), "end": at(start + days, 10),
                   "payment_plan": {"deposit": deposit, "instalments": instalments,
                                    "interval": "month"}}]}),
        )
        .await;
        if placed.status == StatusCode::CONFLICT {
            // Its unit is taken for some of the period.
            Tally::bump(&tally.unavailable);
            continue;
        }
        expect(&placed, StatusCode::CREATED, "a lease");
        Tally::bump(&tally.placed);
        let order_id = placed.uuid("order_id");
        let due_now = money(&placed.body, "due_now");
        let paid = app
            .payment_webhook(
                &format!("evt_lease_{n}"),
                SUCCEEDED,
                order_id,
                minor_units(due_now),
                None,
            )
            .await;
        expect(&paid, StatusCode::OK, "a lease's upfront payment");
        if rng.gen_bool(0.5) {
            let first = money(&placed.body["schedule"][0], "amount");
            let paid = app
                .payment_webhook(
                    &format!("evt_lease_{n}_1"),
                    SUCCEEDED,
                    order_id,
                    minor_units(first),
                    None,
                )
                .await;
            expect(&paid, StatusCode::OK, "a lease's first instalment");
            Tally::bump(&tally.first_paid);
        }
    }
}
