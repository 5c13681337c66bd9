//! The matrix rows of the subscription and plan routes (API.md
//! "Subscriptions and instalments") and of an order invoice's PDF, with
//! the resources they act on: two plans, a subscription of `customer-a`,
//! and the invoice vendor A issued for the paid order.

use std::time::Duration;

use ledger_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::{Access, Route, Who::*, ANY};

pub(super) struct Resources {
    pub(super) plan: Uuid,
    other_plan: Uuid,
    pub(super) subscription: Uuid,
    invoice: Uuid,
}

impl Resources {
    pub(super) async fn new(app: &TestApp, order: Uuid, vendor_a: Uuid) -> Resources {
        let mut plans = Vec::new();
        for (name, price) in [("Monthly pass", "89.00"), ("Gold pass", "120.00")] {
            let plan = app
                .post(
                    "/v1/plans",
                    &app.admin(),
                    json!({"name": name, "price": price, "interval": "month"}),
                )
                .await;
            assert_eq!(plan.status, StatusCode::CREATED, "{:?}", plan.body);
            plans.push(plan.uuid("plan_id"));
        }
        let started = app
            .post(
                "/v1/subscriptions",
                &app.customer("customer-a"),
                json!({"plan_id": plans[0]}),
            )
            .await;
        assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
        Resources {
            plan: plans[0],
            other_plan: plans[1],
            subscription: started.uuid("subscription_id"),
            invoice: vendor_invoice(app, order, vendor_a).await,
        }
    }

    /// The rows, commands first (in an order that keeps each allowed: the
    /// plan changes before the cancellation at period end).
    pub(super) fn routes(&self) -> Vec<Route> {
        let (plan, other_plan, id) = (self.plan, self.other_plan, self.subscription);
        let owner = Access::Hiding {
            allowed: &[Customer, Admin],
            hidden: &[OtherCustomer],
        };
        let row = |method: Method, label: &'static str, path: String, body, access| Route {
            method,
            label,
            path,
            body,
            access,
        };
        vec![
            row(
                Method::POST,
                "POST /v1/plans",
                "/v1/plans".into(),
                Some(json!({"name": "Matrix", "price": "9.00", "interval": "week"})),
                Access::Token(&[Admin]),
            ),
            row(
                Method::POST,
                "POST /v1/subscriptions",
                "/v1/subscriptions".into(),
                Some(json!({"plan_id": plan})),
                Access::Token(&[Customer, OtherCustomer]),
            ),
            row(
                Method::POST,
                "POST /v1/subscriptions/{id}/change-plan",
                format!("/v1/subscriptions/{id}/change-plan"),
                Some(json!({"plan_id": other_plan})),
                owner,
            ),
            row(
                Method::POST,
                "POST /v1/subscriptions/{id}/cancel",
                format!("/v1/subscriptions/{id}/cancel"),
                Some(json!({"at_period_end": true})),
                owner,
            ),
            row(
                Method::GET,
                "GET /v1/plans",
                "/v1/plans".into(),
                None,
                Access::Token(ANY),
            ),
            row(
                Method::GET,
                "GET /v1/plans/{id}",
                format!("/v1/plans/{plan}"),
                None,
                Access::Token(ANY),
            ),
            row(
                Method::GET,
                "GET /v1/subscriptions?status=",
                "/v1/subscriptions?status=pending".into(),
                None,
                Access::Token(&[Customer, OtherCustomer, Admin]),
            ),
            row(
                Method::GET,
                "GET /v1/subscriptions/{id}",
                format!("/v1/subscriptions/{id}"),
                None,
                owner,
            ),
            row(
                Method::GET,
                "GET /v1/invoices/{id}.pdf",
                format!("/v1/invoices/{}.pdf", self.invoice),
                None,
                Access::Token(&[Customer, Vendor, Admin]),
            ),
        ]
    }
}

/// The invoice vendor A issued for the paid order (a policy issues it
/// after the payment: waited for).
async fn vendor_invoice(app: &TestApp, order: Uuid, vendor_a: Uuid) -> Uuid {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = app
            .get(&format!("/v1/orders/{order}/invoices"), &app.admin())
            .await;
        let found = answer.body.as_array().and_then(|invoices| {
            invoices
                .iter()
                .find(|i| i["vendor_id"] == json!(vendor_a) && i["kind"] == "invoice")
                .and_then(|i| i["invoice_id"].as_str())
                .and_then(|id| Uuid::parse_str(id).ok())
        });
        if let Some(invoice) = found {
            return invoice;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no invoice of vendor A: {:?}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
