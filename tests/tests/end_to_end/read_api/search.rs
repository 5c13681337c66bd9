//! Listings search: by words, category and vendor, by a free period, page
//! by page, and scoped to what the principal may see.

use super::*;

#[tokio::test]
async fn search_finds_listings_by_words_of_title_or_description_by_category_and_by_vendor() {
    let app = TestApp::spawn().await;
    let harbour = app.register_vendor("Harbour").await;
    let alpine = app.register_vendor("Alpine").await;
    let (kayak, _) = published(
        &app,
        harbour,
        rental_body("Sea kayak", "Stable touring boat", "boats", "day", 1),
    )
    .await;
    let (canoe, _) = published(
        &app,
        harbour,
        rental_body("Canoe", "Open touring canoe", "boats", "day", 1),
    )
    .await;
    let (paddle, _) = published(
        &app,
        harbour,
        sale_body("Paddle", "Carbon paddle for a kayak", "gear", 4),
    )
    .await;
    let (skis, last) = published(
        &app,
        alpine,
        rental_body("Skis", "Touring skis", "winter", "day", 2),
    )
    .await;
    let c = app.customer("alice");
    let min = Some(last);

    assert_eq!(
        search_ids(&app, &c, "q=kayak", min).await,
        set(&[kayak, paddle])
    );
    assert_eq!(search_ids(&app, &c, "q=carbon", min).await, set(&[paddle]));
    assert_eq!(
        search_ids(&app, &c, "q=touring", min).await,
        set(&[kayak, canoe, skis])
    );
    assert_eq!(
        search_ids(&app, &c, "q=touring%20canoe", min).await,
        set(&[canoe]),
        "every word of q must match"
    );
    assert!(search_ids(&app, &c, "q=submarine", min).await.is_empty());
    assert_eq!(
        search_ids(&app, &c, "category=boats", min).await,
        set(&[kayak, canoe])
    );
    assert!(search_ids(&app, &c, "category=boat", min).await.is_empty());
    assert_eq!(
        search_ids(&app, &c, &format!("vendor_id={alpine}"), min).await,
        set(&[skis])
    );
    assert_eq!(
        search_ids(&app, &c, &format!("vendor_id={harbour}&q=touring"), min).await,
        set(&[kayak, canoe])
    );
    assert_eq!(
        search_ids(&app, &c, "category=gear&q=kayak", min).await,
        set(&[paddle])
    );
    assert_eq!(
        search_ids(&app, &c, "", min).await,
        set(&[kayak, canoe, paddle, skis])
    );

    // An item carries what a catalogue needs.
    let page = search_page(&app, &c, "q=carbon", min).await;
    let item = &page.body["items"][0];
    assert_eq!(item["title"], "Paddle");
    assert_eq!(item["category"], "gear");
    assert_eq!(item["kind"], "sale");
    assert_eq!(item["vendor_id"], harbour.to_string());
    assert_eq!(item["unit_price"], "7.00");
    assert_eq!(item["stock"], 4);
    app.stop().await;
}

#[tokio::test]
async fn search_with_a_period_returns_only_listings_free_for_the_whole_of_it() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let (three, _) = published(
        &app,
        vendor,
        rental_body("Kayak", "Three kayaks", "boats", "day", 3),
    )
    .await;
    let (dark, _) = published(
        &app,
        vendor,
        rental_body("Canoe", "Two canoes", "boats", "day", 2),
    )
    .await;
    let (stock, _) = published(&app, vendor, sale_body("Paddle", "Paddles", "gear", 5)).await;
    // 2 of 3 kayaks over days 2-4 (inside the period, not at its start).
    let booked = app
        .place(
            "alice",
            vec![
                rental_item(three, 2, &at(2, 0), &at(4, 0)),
                sale_item(stock, 3),
            ],
        )
        .await;
    // Every canoe blacked out over day 3.
    let last = add_blackout(&app, vendor, dark, &at(3, 0), &at(4, 0), None).await;
    let last = last.max(position(&booked));
    let c = app.customer("bob");

    let period = |from: &str, to: &str, quantity: u32| {
        format!("available_from={from}&available_to={to}&quantity={quantity}")
    };
    let days_1_to_5 = |q| period(&at(1, 0), &at(5, 0), q);
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(1), Some(last)).await,
        set(&[three, stock]),
        "one kayak is free all along; the canoes are blacked out"
    );
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(2), Some(last)).await,
        set(&[stock]),
        "two kayaks are not free while two are booked"
    );
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(3), Some(last)).await,
        HashSet::new(),
        "three kayaks: no; 3 paddles: only 2 left"
    );
    // Without `quantity` one unit is asked for.
    assert_eq!(
        search_ids(
            &app,
            &c,
            &format!("available_from={}&available_to={}", at(1, 0), at(5, 0)),
            Some(last)
        )
        .await,
        set(&[three, stock])
    );
    // Half-open periods: the booking ends as day 4 starts, the blackout too.
    assert_eq!(
        search_ids(&app, &c, &period(&at(4, 0), &at(6, 0), 2), Some(last)).await,
        set(&[three, dark, stock])
    );
    assert_eq!(
        search_ids(&app, &c, &period(&at(0, 0), &at(2, 0), 3), Some(last)).await,
        set(&[three]),
        "before the booking all three kayaks are free"
    );
    // Combined with the other filters.
    assert_eq!(
        search_ids(
            &app,
            &c,
            &format!("category=boats&{}", days_1_to_5(1)),
            Some(last)
        )
        .await,
        set(&[three])
    );

    // Paid, the hold is a booking and still counts.
    let paid = app.pay(&booked).await;
    assert_eq!(
        search_ids(&app, &c, &days_1_to_5(2), Some(position(&paid))).await,
        set(&[stock])
    );
    app.stop().await;
}

#[tokio::test]
async fn search_period_parameters_are_validated() {
    let app = TestApp::spawn().await;
    let c = app.customer("alice");
    let only_from = app
        .get_at(
            &format!("/v1/listings?available_from={}", at(1, 0)),
            &c,
            None,
        )
        .await;
    assert_eq!(
        only_from.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        only_from.body
    );
    let backwards = app
        .get_at(
            &format!(
                "/v1/listings?available_from={}&available_to={}",
                at(2, 0),
                at(1, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&backwards, "available_to");
    let empty = app
        .get_at(
            &format!(
                "/v1/listings?available_from={}&available_to={}",
                at(1, 0),
                at(1, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&empty, "available_to");
    let zero = app
        .get_at(
            &format!(
                "/v1/listings?available_from={}&available_to={}&quantity=0",
                at(1, 0),
                at(2, 0)
            ),
            &c,
            None,
        )
        .await;
    assert_invalid_field(&zero, "quantity");
    let not_a_time = app
        .get_at("/v1/listings?available_from=tomorrow", &c, None)
        .await;
    assert_problem(&not_a_time, StatusCode::BAD_REQUEST, "bad-request");
    app.stop().await;
}

#[tokio::test]
async fn search_pages_walk_every_listing_once_and_end_with_a_null_cursor() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Harbour").await;
    let mut all = Vec::new();
    let mut last = 0;
    for i in 0..7 {
        let (id, at) = published(
            &app,
            vendor,
            sale_body(&format!("Item {i}"), "Thing", "gear", 1),
        )
        .await;
        all.push(id);
        last = at;
    }
    let c = app.customer("alice");

    let (ids, sizes) = walk_pages(&app, "/v1/listings?limit=3", &c, "listing_id", Some(last)).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(ids.len(), set(&ids).len(), "no listing twice: {ids:?}");
    assert_eq!(set(&ids), set(&all));

    // A last page that is exactly full still ends with null, no empty page.
    let (ids, sizes) = walk_pages(&app, "/v1/listings?limit=7", &c, "listing_id", None).await;
    assert_eq!(sizes, vec![7]);
    assert_eq!(set(&ids), set(&all));
    // Filters hold across pages.
    let (ids, sizes) = walk_pages(
        &app,
        "/v1/listings?limit=2&q=thing&category=gear",
        &c,
        "listing_id",
        None,
    )
    .await;
    assert_eq!(sizes, vec![2, 2, 2, 1]);
    assert_eq!(set(&ids), set(&all));
    // The default and the maximum.
    let page = search_page(&app, &c, "", None).await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(7));
    assert!(page.body["next_cursor"].is_null());
    search_page(&app, &c, "limit=500", None).await;

    for bad in ["limit=0", "limit=501", "limit=-1"] {
        let answer = app.get_at(&format!("/v1/listings?{bad}"), &c, None).await;
        assert_invalid_field(&answer, "limit");
    }
    for bad in [
        "cursor=not-a-cursor",
        "limit=ten",
        "colour=red",
        "vendor_id=nobody",
        "quantity=many",
    ] {
        let answer = app.get_at(&format!("/v1/listings?{bad}"), &c, None).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    app.stop().await;
}

#[tokio::test]
async fn customers_see_only_published_listings_vendors_also_their_own_and_admins_all() {
    let app = TestApp::spawn().await;
    let harbour = app.register_vendor("Harbour").await;
    let alpine = app.register_vendor("Alpine").await;
    let (live, _) = published(&app, harbour, sale_body("Live", "On sale", "gear", 1)).await;
    let (draft, _) = create_listing(&app, harbour, sale_body("Draft", "Soon", "gear", 1)).await;
    let (archived, _) = published(&app, harbour, sale_body("Old", "Gone", "gear", 1)).await;
    let archive = app.archive_listing(&app.vendor(harbour), archived).await;
    assert_ok(&archive);
    let (other_draft, last) =
        create_listing(&app, alpine, sale_body("Alpine draft", "Soon", "gear", 1)).await;
    let last = last.max(position(&archive));

    let customer = app.customer("alice");
    let owner = app.vendor(harbour);
    let other = app.vendor(alpine);
    let admin = app.admin();
    let analyst = app.analyst();
    assert_eq!(
        search_ids(&app, &customer, "", Some(last)).await,
        set(&[live])
    );
    assert_eq!(
        search_ids(&app, &analyst, "", Some(last)).await,
        set(&[live])
    );
    assert_eq!(
        search_ids(&app, &owner, "", Some(last)).await,
        set(&[live, draft, archived])
    );
    assert_eq!(
        search_ids(&app, &other, "", Some(last)).await,
        set(&[live, other_draft])
    );
    assert_eq!(
        search_ids(&app, &admin, "", Some(last)).await,
        set(&[live, draft, archived, other_draft])
    );

    let detail = |id: Uuid| format!("/v1/listings/{id}");
    for (token, id, visible) in [
        (&customer, live, true),
        (&customer, draft, false),
        (&customer, archived, false),
        (&analyst, draft, false),
        (&owner, draft, true),
        (&owner, archived, true),
        (&other, draft, false),
        (&other, archived, false),
        (&admin, draft, true),
        (&admin, other_draft, true),
    ] {
        let answer = app.get_at(&detail(id), token, Some(last)).await;
        if visible {
            assert_ok(&answer);
            assert_eq!(answer.body["listing_id"], id.to_string());
        } else {
            assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
        }
    }
    let as_owner = app.get_at(&detail(draft), &owner, None).await;
    assert_eq!(as_owner.body["status"], "draft");
    let as_owner = app.get_at(&detail(archived), &owner, None).await;
    assert_eq!(as_owner.body["status"], "archived");

    // Availability follows the same visibility.
    let availability = |id: Uuid| {
        format!(
            "/v1/listings/{id}/availability?from={}&to={}",
            at(0, 0),
            at(1, 0)
        )
    };
    let hidden = app.get_at(&availability(draft), &customer, None).await;
    assert_problem(&hidden, StatusCode::NOT_FOUND, "not-found");
    assert_ok(&app.get_at(&availability(draft), &owner, None).await);
    app.stop().await;
}

#[tokio::test]
async fn search_by_period_leaves_out_a_listing_whose_schedule_refuses_the_period() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Bikes Berlin").await;
    let weekdays: Vec<Value> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| json!({"weekday": d, "start": "09:00", "end": "18:00"}))
        .collect();
    // Four bikes open weekdays 09-18 (Berlin), one without a schedule.
    let mut scheduled = Vec::new();
    let mut last = 0;
    for i in 0..4 {
        let (id, _) = published(
            &app,
            vendor,
            rental_body(&format!("Bike {i}"), "City bike", "bikes", "hour", 1),
        )
        .await;
        let set = app
            .send(
                Method::PUT,
                &format!("/v1/listings/{id}/schedule"),
                Some(&app.vendor(vendor)),
                Some(&json!({"time_zone": "Europe/Berlin", "weekly": weekdays})),
                &[],
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
        scheduled.push(id);
        last = last.max(position(&set));
    }
    let (always, at_publish) = published(
        &app,
        vendor,
        rental_body("Cargo bike", "Open all the time", "bikes", "hour", 1),
    )
    .await;
    let last = last.max(at_publish);
    let c = app.customer("alice");
    let period = |from: &str, to: &str| format!("available_from={from}&available_to={to}");

    // Tuesday 2030-01-01 10:00-12:00 Berlin (09:00-11:00 UTC): all open.
    let tuesday = period("2030-01-01T09:00:00Z", "2030-01-01T11:00:00Z");
    let mut every = scheduled.clone();
    every.push(always);
    assert_eq!(
        search_ids(&app, &c, &tuesday, Some(last)).await,
        set(&every)
    );
    // Sunday 2030-01-06 10:00-12:00 Berlin: the scheduled bikes are shut.
    let sunday = period("2030-01-06T09:00:00Z", "2030-01-06T11:00:00Z");
    assert_eq!(
        search_ids(&app, &c, &sunday, Some(last)).await,
        set(&[always])
    );
    // Tuesday 17:00-19:00 Berlin runs past closing: shut too.
    let late = period("2030-01-01T16:00:00Z", "2030-01-01T18:00:00Z");
    assert_eq!(
        search_ids(&app, &c, &late, Some(last)).await,
        set(&[always])
    );
    // The order the search would offer is the one the Inventory accepts.
    let refused = app
        .place_order(
            "alice",
            vec![rental_item(
                scheduled[0],
                1,
                "2030-01-06T09:00:00Z",
                "2030-01-06T11:00:00Z",
            )],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["errors"][0]["code"], "closed");
    // Pages skip the listings left out and still fill: one a page.
    let (ids, sizes) = walk_pages(
        &app,
        &format!("/v1/listings?limit=1&{sunday}"),
        &c,
        "listing_id",
        Some(last),
    )
    .await;
    assert_eq!(set(&ids), set(&[always]));
    assert_eq!(sizes, vec![1]);
    let (ids, sizes) = walk_pages(
        &app,
        &format!("/v1/listings?limit=2&{tuesday}"),
        &c,
        "listing_id",
        Some(last),
    )
    .await;
    assert_eq!(set(&ids), set(&every));
    assert_eq!(sizes, vec![2, 2, 1]);
    app.stop().await;
}
