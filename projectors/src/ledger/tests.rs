//! Unit tests of the ledger read model's pure parts.

use super::*;
use domain::{price_order, LineInput, LineTerms, Rates};

fn order() -> PricedOrder {
    let line = |vendor: u128, price: i64| LineInput {
        line_id: Uuid::from_u128(vendor * 10),
        hold_id: Uuid::from_u128(vendor * 100),
        listing_id: Uuid::from_u128(vendor * 1000),
        vendor_id: Uuid::from_u128(vendor),
        terms: LineTerms::Sale {
            unit_price: Decimal::new(price, 2),
        },
        quantity: 3,
    };
    price_order(
        &[line(1, 3333), line(2, 1999), line(1, 17)],
        Rates {
            tax_rate: Decimal::new(825, 4),
            platform_fee_rate: Decimal::new(125, 3),
        },
    )
}

#[test]
fn the_allocation_of_a_confirmed_order_is_balanced() {
    assert!(is_balanced(&allocation(&order())));
}

#[test]
fn a_reversal_undoes_the_allocation_line_by_line() {
    let priced = order();
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in allocation(&priced).into_iter().chain(reversal(&priced)) {
        *sums.entry(line.account).or_default() += line.debit - line.credit;
    }
    assert!(sums.values().all(Decimal::is_zero), "{sums:?}");
    assert!(is_balanced(&reversal(&priced)));
}

fn vendor_event(position: i64) -> EventEnvelope {
    EventEnvelope {
        position,
        event_id: Uuid::from_u128(position as u128),
        aggregate_type: "Vendor".into(),
        aggregate_id: Uuid::from_u128(5).to_string(),
        sequence: position,
        event_type: "DamageCredited".into(),
        event_version: domain::EVENT_VERSION.into(),
        payload: serde_json::Value::Null,
        metadata: serde_json::Value::Null,
        recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        tenant: event_log::DEFAULT_TENANT.into(),
    }
}

#[test]
fn sums_that_overflow_are_the_events_error_not_a_panic() {
    let huge = vec![
        Line::debit(CASH, None, Decimal::MAX),
        Line::debit(CASH, None, Decimal::MAX),
        Line::credit(CUSTOMER_FUNDS, None, Decimal::MAX),
    ];
    assert_eq!(totals(&huge), None);
    assert!(!is_balanced(&huge));

    let mut journal = Journal::default();
    let credit = |journal: &mut Journal, position| {
        apply_vendor(
            journal,
            &vendor_event(position),
            Uuid::from_u128(5),
            VendorEvent::DamageCredited {
                order_id: Uuid::from_u128(6),
                line_id: Uuid::from_u128(7),
                amount: Decimal::MAX,
            },
        )
    };
    credit(&mut journal, 1).expect("one credit fits");
    match credit(&mut journal, 2) {
        Err(Error::Apply { position, .. }) => assert_eq!(position, 2),
        other => panic!("expected the event's error, got {other:?}"),
    }
}

#[test]
fn an_unbalanced_entry_is_detected() {
    let mut lines = allocation(&order());
    lines[0].debit += Decimal::new(1, 2);
    assert!(!is_balanced(&lines));
}

fn order_event(position: i64, event_type: &str) -> EventEnvelope {
    EventEnvelope {
        aggregate_type: "Order".into(),
        aggregate_id: Uuid::from_u128(6).to_string(),
        event_type: event_type.into(),
        ..vendor_event(position)
    }
}

/// A day rental, deposit 60.00, returned so late that the late fee (80.00)
/// takes the whole deposit and 20.00 stays owed: every entry balances, the
/// deposit held comes back to zero, the vendor gets the 60.00 now and the
/// 20.00 pending, and cash is what the customer paid.
#[test]
fn a_late_fee_beyond_the_deposit_leaves_a_receivable_and_conserves_money() {
    use domain::{Period, PricingUnit, Tz};
    let (order_id, vendor_id, line_id) =
        (Uuid::from_u128(6), Uuid::from_u128(5), Uuid::from_u128(7));
    let start = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(11_000);
    let priced = price_order(
        &[LineInput {
            line_id,
            hold_id: Uuid::from_u128(8),
            listing_id: Uuid::from_u128(9),
            vendor_id,
            terms: LineTerms::Rental {
                period: Period::new(start, start + chrono::Duration::days(2)).expect("period"),
                pricing_unit: PricingUnit::Day,
                price_per_unit: Decimal::new(1000, 2),
                deposit_per_unit: Decimal::new(3000, 2),
                time_zone: Tz::UTC,
                late_fee_per_unit: Decimal::new(2000, 2),
                cancellation_policy: Vec::new(),
            },
            quantity: 2,
        }],
        Rates {
            tax_rate: Decimal::ZERO,
            platform_fee_rate: Decimal::new(10, 2),
        },
    );
    let paid = priced.total;
    let mut journal = Journal::default();
    let events = vec![
        OrderEvent::OrderPlaced {
            order_id,
            customer_id: "carol".into(),
            currency: "USD".into(),
            priced,
            rates: Rates {
                tax_rate: Decimal::ZERO,
                platform_fee_rate: Decimal::new(10, 2),
            },
            hold_expires_at: start,
            placed_at: start,
        },
        OrderEvent::PaymentCaptured {
            payment_id: "evt_1".into(),
            intent_id: "pi_1".into(),
            amount: paid,
        },
        OrderEvent::OrderConfirmed {
            confirmed_at: start,
        },
        OrderEvent::LineReturned {
            line_id,
            vendor_id,
            returned_at: start + chrono::Duration::days(4),
            deposit_refunded: Decimal::new(0, 2),
            damage_withheld: Decimal::new(0, 2),
            late_fee: Decimal::new(8000, 2),
            late_fee_owed: Decimal::new(2000, 2),
            refund: Decimal::ZERO,
        },
    ];
    for (i, event) in events.into_iter().enumerate() {
        apply_order(
            &mut journal,
            &order_event(i as i64 + 1, "x"),
            order_id,
            event,
        )
        .expect("applied");
    }
    apply_vendor(
        &mut journal,
        &vendor_event(10),
        vendor_id,
        VendorEvent::LateFeeCredited {
            order_id,
            line_id,
            amount: Decimal::new(6000, 2),
        },
    )
    .expect("applied");
    let mut balance: BTreeMap<String, Decimal> = BTreeMap::new();
    for entry in &journal.entries {
        assert!(is_balanced(&entry.lines), "{}", entry.kind);
        for line in &entry.lines {
            *balance.entry(line.account.clone()).or_default() += line.debit - line.credit;
        }
    }
    assert_eq!(balance[CASH], paid);
    assert!(balance[DEPOSITS_HELD].is_zero(), "{balance:?}");
    assert_eq!(balance[CUSTOMER_RECEIVABLE], Decimal::new(2000, 2));
    assert_eq!(
        balance[&vendor_available(vendor_id)],
        Decimal::new(-6000, 2)
    );
    // Pending: the part's net 36.00 plus the 20.00 owed.
    assert_eq!(balance[&vendor_pending(vendor_id)], Decimal::new(-5600, 2));
    assert!(balance.values().sum::<Decimal>().is_zero());
}

fn part(vendor: u128, tax: i64, fee: i64, net: i64, available: bool) -> domain::RefundPart {
    let (tax, fee, net) = (
        Decimal::new(tax, 2),
        Decimal::new(fee, 2),
        Decimal::new(net, 2),
    );
    domain::RefundPart {
        vendor_id: Uuid::from_u128(vendor),
        lines: Vec::new(),
        amount: tax + fee + net,
        subtotal: fee + net,
        tax,
        fee_reversed: fee,
        net_reversed: net,
        from_pending: if available { Decimal::ZERO } else { net },
        from_available: if available { net } else { Decimal::ZERO },
    }
}

#[test]
fn refund_and_dispute_entries_are_balanced() {
    use reversals::*;
    let parts = vec![part(1, 81, 82, 736, false), part(2, 9, 9, 83, true)];
    let amount = Decimal::new(1000, 2);
    assert!(is_balanced(&refund_lines(amount, &parts)));
    assert!(is_balanced(&dispute_opened_lines(amount, &parts)));
    assert!(is_balanced(&dispute_lost_lines(amount, &parts)));
    let releases = vec![
        domain::DisputeRelease {
            vendor_id: Uuid::from_u128(1),
            to_pending: Decimal::new(736, 2),
            to_available: Decimal::ZERO,
        },
        domain::DisputeRelease {
            vendor_id: Uuid::from_u128(2),
            to_pending: Decimal::ZERO,
            to_available: Decimal::new(83, 2),
        },
    ];
    assert!(is_balanced(&dispute_won_lines(amount, &releases)));
}

#[test]
fn a_won_dispute_undoes_its_opening_account_by_account() {
    use reversals::*;
    let parts = vec![part(1, 0, 300, 2700, false)];
    let amount = Decimal::new(3000, 2);
    let releases = vec![domain::DisputeRelease {
        vendor_id: Uuid::from_u128(1),
        to_pending: Decimal::new(2700, 2),
        to_available: Decimal::ZERO,
    }];
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in dispute_opened_lines(amount, &parts)
        .into_iter()
        .chain(dispute_won_lines(amount, &releases))
    {
        *sums.entry(line.account).or_default() += line.debit - line.credit;
    }
    assert!(sums.values().all(Decimal::is_zero), "{sums:?}");
}

#[test]
fn a_subscription_invoice_books_its_net_price_as_revenue_balanced_whatever_the_credit() {
    for (amount, credit, tax) in [
        (8900, 0, 0),
        (7350, 1550, 0),
        (0, 8900, 0),
        (1, 99, 0),
        (9635, 0, 735),
    ] {
        let (amount, credit) = (Decimal::new(amount, 2), Decimal::new(credit, 2));
        let tax = Decimal::new(tax, 2);
        let lines = subscriptions::invoice_lines(amount, credit, tax);
        assert!(is_balanced(&lines), "{amount} + {credit} + {tax}");
        let credited = |account: &str| -> Decimal {
            lines
                .iter()
                .filter(|l| l.account == account)
                .map(|l| l.credit)
                .sum()
        };
        assert_eq!(
            credited(subscriptions::SUBSCRIPTION_REVENUE),
            amount - tax + credit
        );
        assert_eq!(credited(TAX_PAYABLE), tax);
    }
}

/// Issue 15: two tenants' orders in one batch, with the same account names
/// (`cash`, `platform_fees`, ...): every posting, account total, earnings
/// row and order carries its event's tenant, and each tenant's books
/// balance on their own.
#[test]
fn postings_carry_their_tenant_and_each_tenants_books_balance() {
    let mut journal = Journal::default();
    let priced = order();
    let tenants = [("acme", 100u128), ("globex", 200u128)];
    for (tenant, base) in tenants {
        let order_id = Uuid::from_u128(base);
        let mut priced = priced.clone();
        // Each tenant's vendors are its own.
        for split in &mut priced.vendors {
            split.vendor_id = Uuid::from_u128(base + split.vendor_id.as_u128());
        }
        for line in &mut priced.lines {
            line.vendor_id = Uuid::from_u128(base + line.vendor_id.as_u128());
        }
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let events = [
            OrderEvent::OrderPlaced {
                order_id,
                customer_id: "carol".into(),
                currency: "USD".into(),
                priced: priced.clone(),
                rates: Rates {
                    tax_rate: Decimal::new(825, 4),
                    platform_fee_rate: Decimal::new(125, 3),
                },
                hold_expires_at: at,
                placed_at: at,
            },
            OrderEvent::PaymentCaptured {
                payment_id: format!("evt_{tenant}"),
                intent_id: format!("pi_{tenant}"),
                amount: priced.total,
            },
            OrderEvent::OrderConfirmed { confirmed_at: at },
        ];
        for (i, event) in events.into_iter().enumerate() {
            let envelope = EventEnvelope {
                tenant: tenant.into(),
                aggregate_id: order_id.to_string(),
                ..order_event(base as i64 + i as i64, "x")
            };
            journal
                .apply(&envelope, order_id, Change::Order(event))
                .expect("applied");
        }
    }
    assert!(!journal.entries.is_empty());
    for (tenant, base) in tenants {
        let entries: Vec<&Entry> = journal
            .entries
            .iter()
            .filter(|e| e.tenant == tenant)
            .collect();
        // Placed (nothing), captured, confirmed: two entries per tenant,
        // each at one of the tenant's own positions.
        assert_eq!(entries.len(), 2, "{tenant}");
        assert!(entries
            .iter()
            .all(|e| e.order_id == Some(Uuid::from_u128(base))));
        let (debit, credit) = journal
            .totals
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .fold((Decimal::ZERO, Decimal::ZERO), |(d, c), (_, (dd, cc))| {
                (d + dd, c + cc)
            });
        assert_eq!(debit, credit, "{tenant}'s books balance");
        assert_eq!(
            journal.totals[&(tenant.to_owned(), CASH.to_owned())].0,
            priced.total,
            "{tenant}'s cash is its own payment only"
        );
        let state = journal.orders[&Uuid::from_u128(base)]
            .as_ref()
            .expect("in the ledger");
        assert_eq!(state.tenant, tenant);
        for split in &priced.vendors {
            let vendor_id = Uuid::from_u128(base + split.vendor_id.as_u128());
            assert_eq!(journal.earnings[&vendor_id].tenant, tenant);
        }
    }
    assert!(journal
        .totals
        .keys()
        .all(|(t, _)| t == "acme" || t == "globex"));
}
