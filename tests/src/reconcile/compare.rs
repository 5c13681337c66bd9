//! Comparing: what the ledger answered against what the log says, check by
//! check, every disagreement a [`Discrepancy`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use sqlx::PgPool;
use uuid::Uuid;

use super::*;
use std::fmt;

use super::expected::*;

pub(super) struct Report(Vec<Discrepancy>);

impl Report {
    fn same<T: PartialEq + fmt::Debug>(
        &mut self,
        check: &str,
        subject: impl fmt::Display,
        expected: T,
        observed: T,
    ) {
        if expected != observed {
            self.0.push(Discrepancy {
                check: check.to_owned(),
                subject: subject.to_string(),
                expected: format!("{expected:?}"),
                observed: format!("{observed:?}"),
            });
        }
    }

    /// A ratio the API rounds to `dp` places: either midpoint rule is
    /// accepted (DESIGN.md fixes rounding for money only).
    fn ratio(&mut self, check: &str, exact: Decimal, dp: u32, observed: Decimal) {
        let away = exact.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        let even = exact.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
        if observed != away && observed != even {
            self.same(check, "all time", away, observed);
        }
    }
}

/// Compares what the ledger answered with what the log says; every
/// disagreement, to the cent. Empty when all is well.
pub async fn check(pool: &PgPool, observed: &Observed) -> anyhow::Result<Vec<Discrepancy>> {
    let expected = Expected::from_log(pool).await?;
    Ok(compare(&expected, observed))
}

/// [`check`] with the expectations already read.
pub fn compare(expected: &Expected, observed: &Observed) -> Vec<Discrepancy> {
    let mut r = Report(expected.log_problems.clone());
    check_journal(expected, observed, &mut r);
    check_accounts(expected, observed, &mut r);
    check_earnings(expected, observed, &mut r);
    check_conservation(expected, observed, &mut r);
    check_summary(expected, observed, &mut r);
    check_revenue(expected, observed, &mut r);
    check_payouts(expected, observed, &mut r);
    r.0
}

/// Every payout listed with its vendor, amount and status as the log has
/// it, and the summary's payouts by status over the window.
pub(super) fn check_payouts(expected: &Expected, observed: &Observed, r: &mut Report) {
    let ids: BTreeSet<&Uuid> = expected
        .payout_states
        .keys()
        .chain(observed.payouts.keys())
        .collect();
    for id in ids {
        r.same(
            "payouts: (vendor, amount, status) as the log says",
            format!("payout {id}"),
            expected.payout_states.get(id),
            observed.payouts.get(id),
        );
    }
    let (from, to) = window();
    let mut by_status: BTreeMap<String, (i64, Decimal)> = BTreeMap::new();
    for (id, payout) in &expected.payout_states {
        let requested = expected.payout_requested_at.get(id).copied();
        if requested.is_some_and(|t| t >= from && t < to) {
            let e = by_status.entry(payout.status.clone()).or_default();
            e.0 += 1;
            e.1 += payout.amount;
        }
    }
    r.same(
        "summary.payouts: (count, amount) by status",
        "all time",
        by_status,
        observed.summary.payouts.clone(),
    );
}

pub(super) fn net_by_position(postings: &[Posting]) -> Journal {
    let mut journal: Journal = BTreeMap::new();
    for p in postings {
        let e = journal
            .entry(p.position)
            .or_default()
            .entry(p.account.clone())
            .or_default();
        e.0 += p.debit;
        e.1 += p.credit;
    }
    journal
}

/// The journal: balanced overall and within every entry, and entry by
/// entry the movements the log calls for.
pub(super) fn check_journal(expected: &Expected, observed: &Observed, r: &mut Report) {
    let debit: Decimal = observed.postings.iter().map(|p| p.debit).sum();
    let credit: Decimal = observed.postings.iter().map(|p| p.credit).sum();
    r.same("journal: Σ debit = Σ credit", "all postings", debit, credit);
    let journal = net_by_position(&observed.postings);
    for (position, accounts) in &journal {
        let d: Decimal = accounts.values().map(|a| a.0).sum();
        let c: Decimal = accounts.values().map(|a| a.1).sum();
        r.same(
            "journal: entry balanced (Σ debit = Σ credit)",
            format!("position {position}"),
            d,
            c,
        );
    }
    let positions: BTreeSet<i64> = journal
        .keys()
        .chain(expected.journal.keys())
        .copied()
        .collect();
    let empty = BTreeMap::new();
    for position in positions {
        let want = expected.journal.get(&position).unwrap_or(&empty);
        let got = journal.get(&position).unwrap_or(&empty);
        let accounts: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
        for account in accounts {
            r.same(
                "journal: entry lines (debit, credit) as the event calls for",
                format!("position {position} account {account}"),
                want.get(account).copied().unwrap_or_default(),
                got.get(account).copied().unwrap_or_default(),
            );
        }
    }
}

/// The trial balance: totals, per-account figures against the journal,
/// the movements and the business state.
pub(super) fn check_accounts(expected: &Expected, observed: &Observed, r: &mut Report) {
    r.same(
        "trial balance: total debit = total credit",
        "totals",
        observed.total_debit,
        observed.total_credit,
    );
    let debit: Decimal = observed.accounts.values().map(|a| a.debit).sum();
    let credit: Decimal = observed.accounts.values().map(|a| a.credit).sum();
    r.same(
        "trial balance: totals = Σ accounts",
        "totals",
        (debit, credit),
        (observed.total_debit, observed.total_credit),
    );
    let mut from_postings: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for p in &observed.postings {
        let e = from_postings.entry(p.account.clone()).or_default();
        e.0 += p.debit;
        e.1 += p.credit;
    }
    let totals = expected.account_totals();
    let balances = expected.balances();
    let accounts: BTreeSet<&String> = observed
        .accounts
        .keys()
        .chain(from_postings.keys())
        .chain(totals.keys())
        .chain(balances.keys())
        .collect();
    for account in accounts {
        let got = observed.accounts.get(account).copied().unwrap_or_default();
        r.same(
            "trial balance: balance = debit − credit",
            account,
            got.debit - got.credit,
            got.balance,
        );
        r.same(
            "trial balance: (debit, credit) = Σ journal lines",
            account,
            from_postings.get(account).copied().unwrap_or_default(),
            (got.debit, got.credit),
        );
        r.same(
            "trial balance: (debit, credit) = Σ movements of the log",
            account,
            totals.get(account).copied().unwrap_or_default(),
            (got.debit, got.credit),
        );
        r.same(
            "trial balance: balance = what the log says is owed or held",
            account,
            balances.get(account).copied().unwrap_or_default(),
            got.balance,
        );
    }
}

/// Every vendor's earnings and entries.
pub(super) fn check_earnings(expected: &Expected, observed: &Observed, r: &mut Report) {
    let totals = expected.account_totals();
    let vendors: BTreeSet<&Uuid> = expected
        .vendors
        .iter()
        .chain(observed.earnings.keys())
        .collect();
    for vendor_id in vendors {
        let want = expected.earnings(*vendor_id);
        let Some(got) = observed.earnings.get(vendor_id) else {
            r.same("earnings: every vendor answers", vendor_id, true, false);
            continue;
        };
        let subject = format!("vendor {vendor_id}");
        r.same("earnings.gross", &subject, want.gross, got.gross);
        r.same(
            "earnings.platform_fees",
            &subject,
            want.platform_fees,
            got.platform_fees,
        );
        r.same("earnings.net", &subject, want.net, got.net);
        r.same("earnings.pending", &subject, want.pending, got.pending);
        r.same(
            "earnings.available",
            &subject,
            want.available,
            got.available,
        );
        r.same("earnings.paid_out", &subject, want.paid_out, got.paid_out);
        r.same(
            "earnings.damage_credits",
            &subject,
            want.damage_credits,
            got.damage_credits,
        );
        r.same(
            "earnings: net = gross − platform_fees",
            &subject,
            got.gross - got.platform_fees,
            got.net,
        );

        let entries = observed
            .vendor_entries
            .get(vendor_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let own = [
            vendor_pending(*vendor_id),
            vendor_available(*vendor_id),
            super::vendor_frozen(*vendor_id),
            super::vendor_receivable(*vendor_id),
        ];
        for account in &own {
            let sum = entries
                .iter()
                .filter(|p| &p.account == account)
                .fold((Decimal::ZERO, Decimal::ZERO), |s, p| {
                    (s.0 + p.debit, s.1 + p.credit)
                });
            r.same(
                "earnings entries: Σ lines of the vendor's account",
                account,
                totals.get(account).copied().unwrap_or_default(),
                sum,
            );
        }
        for p in entries {
            // `vendor_reversals` is every vendor's clearing account.
            let foreign = p.account.starts_with("vendor_")
                && p.account != super::VENDOR_REVERSALS
                && !own.contains(&p.account);
            r.same(
                "earnings entries: only the vendor's own accounts",
                format!("{subject} posting {}", p.posting_id),
                false,
                foreign,
            );
        }
    }
}

/// Invariant 2: nothing is lost or created.
pub(super) fn check_conservation(expected: &Expected, observed: &Observed, r: &mut Report) {
    let nets: Decimal = observed.earnings.values().map(|e| e.net).sum();
    let fees: Decimal = observed.earnings.values().map(|e| e.platform_fees).sum();
    r.same(
        "conservation: Σ vendor nets + Σ fees = Σ subtotals of paid, unrefunded orders + Σ kept by cancellation policies",
        "all vendors",
        expected.paid_subtotal() + expected.kept_subtotal() - expected.lease_subtotal_taken(),
        nets + fees,
    );
    let owed = |account: &str| {
        -observed
            .accounts
            .get(account)
            .map(|a| a.balance)
            .unwrap_or_default()
    };
    let payables: Decimal = observed
        .earnings
        .values()
        .map(|e| e.pending + e.available)
        .sum();
    let paid_out: Decimal = observed.earnings.values().map(|e| e.paid_out).sum();
    let unallocated = owed(CUSTOMER_FUNDS);
    // Vendors' shares frozen by open disputes are still owed to them; what
    // they owe back (receivables) is not.
    let by_prefix = |prefix: &str| -> Decimal {
        observed
            .accounts
            .iter()
            .filter(|(account, _)| account.starts_with(prefix))
            .map(|(_, a)| -a.balance)
            .sum()
    };
    let m = &expected.money;
    r.same(
        "conservation: captured + instalments paid + unapplied + late fees paid + subscription cash − refunds (incl. deposits) − disputes lost = payables + frozen − receivables + paid out + fees + tax + deposits held + unallocated + unapplied − instalments written off by the platform + subscription revenue and credits − their receivable and write-offs",
        "all money",
        expected.captured
            + expected.instalments_paid()
            + m.unapplied_in
            + expected.rentals.late_fees_paid_cash
            + expected.subscription_cash_in()
            - m.unapplied_refunded
            - expected.refunds
            - m.partial_refunds
            - expected.deposit_refunds
            - m.disputes_lost,
        payables
            + paid_out
            + owed(PLATFORM_FEES)
            + owed(TAX_PAYABLE)
            + owed(DEPOSITS_HELD)
            + unallocated
            + owed(super::UNAPPLIED)
            + owed(super::VENDOR_REVERSALS)
            + by_prefix("vendor_frozen:")
            + by_prefix("vendor_receivable:")
            + owed(super::rentals::CUSTOMER_RECEIVABLE)
            + owed(super::leases::INSTALMENT_WRITE_OFFS)
            + owed(super::SUBSCRIPTION_REVENUE)
            + owed(super::SUBSCRIPTION_CREDITS)
            + owed(super::SUBSCRIPTION_RECEIVABLE)
            + owed(super::SUBSCRIPTION_WRITE_OFFS),
    );
    r.same(
        "conservation: no customer funds left unallocated once settled, but subscription payments that paid no invoice",
        CUSTOMER_FUNDS,
        expected.subscription_unapplied_held(),
        unallocated,
    );
    r.same(
        "conservation: platform fees account = Σ vendors' fees − fees reversed",
        PLATFORM_FEES,
        fees - m.fees_reversed,
        owed(PLATFORM_FEES),
    );
}

pub(super) fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("a window bound")
            .with_timezone(&Utc)
    };
    (parse(WINDOW_FROM), parse(WINDOW_TO))
}

/// The summary over the window, from the log.
pub(super) fn check_summary(expected: &Expected, observed: &Observed, r: &mut Report) {
    let (from, to) = window();
    let s = &observed.summary;
    let in_window = |t: DateTime<Utc>| t >= from && t < to;
    let placed: Vec<(&Uuid, &OrderFacts)> = expected
        .orders
        .iter()
        .filter(|(_, o)| in_window(o.placed_at))
        .collect();
    let paid: Vec<(&Uuid, &OrderFacts)> = placed
        .iter()
        .copied()
        .filter(|(_, o)| o.status == Status::Confirmed)
        .collect();
    // The analytics count orders as confirmed booking changes left them.
    let gmv: Decimal = paid.iter().map(|(_, o)| o.lines_subtotal()).sum();
    let cancelled = placed
        .iter()
        .filter(|(_, o)| o.status == Status::Cancelled)
        .count();
    r.same("summary.gmv", "all time", gmv, s.gmv);
    r.same("summary.orders", "all time", placed.len() as i64, s.orders);
    r.same(
        "summary.paid_orders",
        "all time",
        paid.len() as i64,
        s.paid_orders,
    );
    let avg = if paid.is_empty() {
        cents(Decimal::ZERO)
    } else {
        cents(gmv / Decimal::from(paid.len()))
    };
    r.same(
        "summary.avg_order_value",
        "all time",
        avg,
        s.avg_order_value,
    );
    if !placed.is_empty() {
        r.ratio(
            "summary.cancellation_rate",
            Decimal::from(cancelled) / Decimal::from(placed.len()),
            4,
            s.cancellation_rate,
        );
    }
    let refunds: Decimal = placed.iter().map(|(_, o)| o.refunded).sum();
    r.same("summary.refunds", "all time", refunds, s.refunds);
    let (overdue_lines, late_fees, late_fees_owed) = expected.late_returns_in(from, to);
    r.same(
        "summary.overdue_lines",
        "all time",
        overdue_lines,
        s.overdue_lines,
    );
    r.same("summary.late_fees", "all time", late_fees, s.late_fees);
    r.same(
        "summary.late_fees_owed (less what was paid since)",
        "all time",
        late_fees_owed,
        s.late_fees_owed,
    );

    let mut booked = Decimal::ZERO;
    for (_, order) in &paid {
        for line in order.lines.iter().filter(|l| l.rental) {
            if let Some((start, end)) = line.rented() {
                let overlap = end.min(to) - start.max(from);
                if overlap > Duration::zero() {
                    booked += seconds(overlap) * Decimal::from(line.quantity);
                }
            }
        }
    }
    r.ratio(
        "summary.rental_days",
        booked / Decimal::from(86_400),
        2,
        s.rental_days,
    );
    let offered: Decimal = expected
        .listings
        .values()
        .filter_map(|(_, units, created)| units.map(|u| (u, *created)))
        .filter(|(_, created)| *created < to)
        .map(|(units, created)| Decimal::from(units) * seconds(to - created.max(from)))
        .sum();
    if !offered.is_zero() {
        r.ratio("summary.utilization", booked / offered, 4, s.utilization);
    }

    let mut by_listing: BTreeMap<Uuid, (Decimal, BTreeSet<Uuid>)> = BTreeMap::new();
    for (order_id, order) in &paid {
        for line in &order.lines {
            let e = by_listing.entry(line.listing_id).or_default();
            e.0 += line.subtotal;
            e.1.insert(**order_id);
        }
    }
    let mut top: Vec<(Uuid, Decimal, i64)> = by_listing
        .into_iter()
        .map(|(id, (gmv, orders))| (id, gmv, orders.len() as i64))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    r.same(
        "summary.top_listings",
        "all time",
        top,
        s.top_listings.clone(),
    );

    let mut failures: BTreeMap<String, i64> = BTreeMap::new();
    for (at, reason) in &expected.failures {
        if in_window(*at) {
            *failures.entry(reason.clone()).or_default() += 1;
        }
    }
    r.same(
        "summary.payment_failures",
        "all time",
        failures,
        s.payment_failures.clone(),
    );
}

pub(super) fn compare_buckets(
    check: &str,
    want: Buckets,
    got: &[Bucket],
    with_fees: bool,
    r: &mut Report,
) {
    let got: BTreeMap<BucketKey, (Decimal, Decimal, i64)> = got
        .iter()
        .map(|b| ((b.start, b.key.clone()), (b.gmv, b.platform_fees, b.orders)))
        .collect();
    let keys: BTreeSet<&BucketKey> = want.keys().chain(got.keys()).collect();
    for key in keys {
        let w = want
            .get(key)
            .map(|(gmv, fees, orders)| {
                (
                    *gmv,
                    if with_fees {
                        cents(*fees)
                    } else {
                        Decimal::ZERO
                    },
                    orders.len() as i64,
                )
            })
            .unwrap_or_default();
        let g = got
            .get(key)
            .map(|(gmv, fees, orders)| {
                (*gmv, if with_fees { *fees } else { Decimal::ZERO }, *orders)
            })
            .unwrap_or_default();
        r.same(
            check,
            format!("{} {}", key.0.to_rfc3339(), key.1.as_deref().unwrap_or("-")),
            w,
            g,
        );
    }
}

/// Revenue buckets: by day, week and month, per vendor and per category,
/// summing to the summary and to the vendors' earnings.
pub(super) fn check_revenue(expected: &Expected, observed: &Observed, r: &mut Report) {
    let rev = &observed.revenue;
    compare_buckets(
        "revenue by day (gmv, fees, orders)",
        expected.revenue(day_of, |_| None),
        &rev.day,
        true,
        r,
    );
    compare_buckets(
        "revenue by week (gmv, fees, orders)",
        expected.revenue(week_of, |_| None),
        &rev.week,
        true,
        r,
    );
    compare_buckets(
        "revenue by month (gmv, fees, orders)",
        expected.revenue(month_of, |_| None),
        &rev.month,
        true,
        r,
    );
    compare_buckets(
        "revenue by day and vendor (gmv, fees, orders)",
        expected.revenue(day_of, |l| Some(l.vendor_id.to_string())),
        &rev.by_vendor,
        true,
        r,
    );
    let category = |l: &Line| {
        Some(
            expected
                .listings
                .get(&l.listing_id)
                .map(|c| c.0.clone())
                .unwrap_or_default(),
        )
    };
    compare_buckets(
        "revenue by day and category (gmv, orders)",
        expected.revenue(day_of, category),
        &rev.by_category,
        false,
        r,
    );

    for (name, buckets) in [
        ("day", &rev.day),
        ("week", &rev.week),
        ("month", &rev.month),
    ] {
        let sum: Decimal = buckets.iter().map(|b| b.gmv).sum();
        r.same(
            "revenue: Σ buckets = summary gmv",
            name,
            observed.summary.gmv,
            sum,
        );
    }
    for b in &rev.week {
        r.same(
            "revenue: a week starts on Monday 00:00",
            b.start.to_rfc3339(),
            (chrono::Weekday::Mon, 0, 0),
            (b.start.weekday(), b.start.hour(), b.start.minute()),
        );
    }
    for b in &rev.month {
        r.same(
            "revenue: a month starts on the 1st 00:00",
            b.start.to_rfc3339(),
            (1, 0),
            (b.start.day(), b.start.hour()),
        );
    }
    let mut per_vendor: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for b in &rev.by_vendor {
        let e = per_vendor
            .entry(b.key.clone().unwrap_or_default())
            .or_default();
        e.0 += b.gmv;
        e.1 += b.platform_fees;
    }
    for (vendor_id, e) in &observed.earnings {
        let (changed, changed_fees) = expected.beyond_analytics(*vendor_id);
        r.same(
            "revenue: Σ vendor buckets = the vendor's (gross, fees) less kept parts, plus lease write-offs",
            vendor_id,
            (e.gross - changed, e.platform_fees - changed_fees),
            per_vendor
                .remove(&vendor_id.to_string())
                .unwrap_or_default(),
        );
    }
    for (key, sums) in per_vendor {
        r.same(
            "revenue: vendor buckets name known vendors",
            key,
            (Decimal::ZERO, Decimal::ZERO),
            sums,
        );
    }
}
