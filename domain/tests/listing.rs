use cqrs_es::test::TestFramework;
use domain::*;
use rust_decimal_macros::dec;
use uuid::Uuid;

type F = TestFramework<Listing>;

fn lid() -> Uuid {
    Uuid::from_u128(10)
}
fn vid() -> Uuid {
    Uuid::from_u128(1)
}
fn rental_terms() -> ListingTerms {
    ListingTerms::Rental {
        pricing_unit: PricingUnit::Day,
        price_per_unit: dec!(25.00),
        deposit: dec!(100.00),
        units: 3,
    }
}
fn create(terms: ListingTerms) -> ListingCommand {
    ListingCommand::Create {
        listing_id: lid(),
        vendor_id: vid(),
        title: " Kayak ".into(),
        description: "A red kayak".into(),
        category: "outdoor".into(),
        terms,
    }
}
fn created(terms: ListingTerms) -> ListingEvent {
    ListingEvent::ListingCreated {
        listing_id: lid(),
        vendor_id: vid(),
        title: "Kayak".into(),
        description: "A red kayak".into(),
        category: "outdoor".into(),
        terms,
    }
}
fn fields(r: Result<Vec<ListingEvent>, DomainError>) -> Vec<String> {
    match r {
        Err(DomainError::Validation { errors }) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected validation error, got {other:?}"),
    }
}

#[test]
fn create_rental_listing_records_trimmed_fields() {
    F::with(())
        .given_no_previous_events()
        .when(create(rental_terms()))
        .then_expect_events(vec![created(rental_terms())]);
}

#[test]
fn create_sale_listing() {
    let terms = ListingTerms::Sale {
        unit_price: dec!(9.99),
        stock: 0,
    };
    F::with(())
        .given_no_previous_events()
        .when(create(terms.clone()))
        .then_expect_events(vec![created(terms)]);
}

#[test]
fn create_twice_is_rejected() {
    F::with(())
        .given(vec![created(rental_terms())])
        .when(create(rental_terms()))
        .then_expect_error(DomainError::AlreadyExists { what: "listing" });
}

#[test]
fn create_collects_all_validation_problems() {
    let r = F::with(())
        .given_no_previous_events()
        .when(ListingCommand::Create {
            listing_id: lid(),
            vendor_id: vid(),
            title: "   ".into(),
            description: "x".repeat(5001),
            category: "".into(),
            terms: ListingTerms::Rental {
                pricing_unit: PricingUnit::Hour,
                price_per_unit: dec!(0),
                deposit: dec!(-1),
                units: 0,
            },
        })
        .inspect_result();
    assert_eq!(
        fields(r),
        vec![
            "title",
            "description",
            "category",
            "price_per_unit",
            "deposit",
            "units"
        ]
    );
}

#[test]
fn title_longer_than_200_chars_is_rejected() {
    let r = F::with(())
        .given_no_previous_events()
        .when(ListingCommand::Create {
            listing_id: lid(),
            vendor_id: vid(),
            title: "t".repeat(201),
            description: String::new(),
            category: "c".into(),
            terms: rental_terms(),
        })
        .inspect_result();
    assert_eq!(fields(r), vec!["title"]);
}

#[test]
fn rental_units_above_100000_are_rejected() {
    let r = F::with(())
        .given_no_previous_events()
        .when(create(ListingTerms::Rental {
            pricing_unit: PricingUnit::Day,
            price_per_unit: dec!(1),
            deposit: dec!(0),
            units: 100_001,
        }))
        .inspect_result();
    assert_eq!(fields(r), vec!["units"]);
}

#[test]
fn sale_price_with_sub_cent_and_huge_stock_are_rejected() {
    let r = F::with(())
        .given_no_previous_events()
        .when(create(ListingTerms::Sale {
            unit_price: dec!(1.001),
            stock: 10_000_001,
        }))
        .inspect_result();
    assert_eq!(fields(r), vec!["unit_price", "stock"]);
}

#[test]
fn commands_before_create_are_not_found() {
    for cmd in [
        ListingCommand::Publish,
        ListingCommand::Archive,
        ListingCommand::ChangePrice { price: dec!(1) },
    ] {
        F::with(())
            .given_no_previous_events()
            .when(cmd)
            .then_expect_error(DomainError::NotFound { what: "listing" });
    }
}

#[test]
fn publish_draft_publishes() {
    F::with(())
        .given(vec![created(rental_terms())])
        .when(ListingCommand::Publish)
        .then_expect_events(vec![ListingEvent::ListingPublished]);
}

#[test]
fn publish_is_idempotent() {
    F::with(())
        .given(vec![
            created(rental_terms()),
            ListingEvent::ListingPublished,
        ])
        .when(ListingCommand::Publish)
        .then_expect_events(vec![]);
}

#[test]
fn publishing_an_archived_listing_is_rejected() {
    let r = F::with(())
        .given(vec![created(rental_terms()), ListingEvent::ListingArchived])
        .when(ListingCommand::Publish)
        .inspect_result();
    assert!(matches!(r, Err(DomainError::InvalidState(_))));
}

#[test]
fn archive_draft_or_published_archives() {
    F::with(())
        .given(vec![created(rental_terms())])
        .when(ListingCommand::Archive)
        .then_expect_events(vec![ListingEvent::ListingArchived]);
    F::with(())
        .given(vec![
            created(rental_terms()),
            ListingEvent::ListingPublished,
        ])
        .when(ListingCommand::Archive)
        .then_expect_events(vec![ListingEvent::ListingArchived]);
}

#[test]
fn archive_is_idempotent() {
    F::with(())
        .given(vec![created(rental_terms()), ListingEvent::ListingArchived])
        .when(ListingCommand::Archive)
        .then_expect_events(vec![]);
}

#[test]
fn change_price_records_new_price() {
    F::with(())
        .given(vec![
            created(rental_terms()),
            ListingEvent::ListingPublished,
        ])
        .when(ListingCommand::ChangePrice { price: dec!(30.00) })
        .then_expect_events(vec![ListingEvent::PriceChanged { price: dec!(30.00) }]);
}

#[test]
fn change_price_on_archived_listing_is_rejected() {
    let r = F::with(())
        .given(vec![created(rental_terms()), ListingEvent::ListingArchived])
        .when(ListingCommand::ChangePrice { price: dec!(30.00) })
        .inspect_result();
    assert!(matches!(r, Err(DomainError::InvalidState(_))));
}

#[test]
fn invalid_price_is_rejected_on_field_price() {
    for price in [dec!(0), dec!(-1), dec!(1.234)] {
        let r = F::with(())
            .given(vec![created(rental_terms())])
            .when(ListingCommand::ChangePrice { price })
            .inspect_result();
        assert_eq!(fields(r), vec!["price"]);
    }
}

#[test]
fn state_accessors_and_serde_round_trip() {
    use cqrs_es::Aggregate;
    let mut l = Listing::default();
    assert!(!l.is_orderable());
    l.apply(created(rental_terms()));
    l.apply(ListingEvent::ListingPublished);
    l.apply(ListingEvent::PriceChanged { price: dec!(30.00) });
    assert!(l.is_orderable());
    assert_eq!(l.vendor_id(), Some(vid()));
    assert_eq!(l.kind(), Some(ListingKind::Rental));
    assert_eq!(l.title(), "Kayak");
    assert_eq!(l.category(), "outdoor");
    assert_eq!(l.price(), Some(dec!(30.00)));
    let back: Listing = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
    assert_eq!(back, l);
}

#[test]
fn terms_serialize_with_kind_tag_and_string_money() {
    let v = serde_json::to_value(rental_terms()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"kind": "rental", "pricing_unit": "day", "price_per_unit": "25.00", "deposit": "100.00", "units": 3})
    );
    let e = serde_json::to_value(ListingEvent::ListingPublished).unwrap();
    assert_eq!(e, serde_json::json!("ListingPublished"));
}
