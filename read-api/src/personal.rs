//! Personal data in answers (docs/PRIVACY.md): events, read models and
//! feeds carry personal fields sealed; every answer to a reader opens them
//! here, last, with the keys that exist at that moment. A sealed field
//! whose subject was erased reads `"[erased]"`. Each answer reads the keys
//! it names once (one statement), none when it names none.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use ledger_http::ApiError;
use privacy::opener::{key_ids, key_ids_in_json_text};
use privacy::Opener;
use serde_json::Value;

use crate::events::EventView;
use crate::live::LiveEvent;
use crate::ReadApp;

/// The problem a failure to read the keys is.
pub(crate) fn problem(err: privacy::Error) -> ApiError {
    match err {
        privacy::Error::Database(err) => err.into(),
        other => ApiError::internal(other),
    }
}

/// Opens the payload and metadata of each event.
pub(crate) async fn reveal_views(app: &ReadApp, views: &mut [EventView]) -> Result<(), ApiError> {
    let mut ids = BTreeSet::new();
    for view in views.iter() {
        key_ids(&view.payload, &mut ids);
        key_ids(&view.metadata, &mut ids);
    }
    let opener = app.personal.opener_for_ids(&ids).await.map_err(problem)?;
    for view in views.iter_mut() {
        opener.reveal(&mut view.payload);
        opener.reveal(&mut view.metadata);
    }
    Ok(())
}

/// Opens every sealed string of `values`.
pub(crate) async fn reveal_values(
    app: &ReadApp,
    values: &mut [&mut Value],
) -> Result<(), ApiError> {
    let mut ids = BTreeSet::new();
    for value in values.iter() {
        key_ids(value, &mut ids);
    }
    let opener = app.personal.opener_for_ids(&ids).await.map_err(problem)?;
    for value in values.iter_mut() {
        opener.reveal(value);
    }
    Ok(())
}

/// The keys the JSON texts name, in hand.
pub(crate) async fn opener_for_texts<'a>(
    app: &ReadApp,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<Opener, privacy::Error> {
    let mut ids = BTreeSet::new();
    for text in texts {
        key_ids_in_json_text(text, &mut ids);
    }
    app.personal.opener_for_ids(&ids).await
}

/// Opens a live feed's buffered events (the shared window keeps them
/// sealed: a feed opens what it sends, when it sends it).
pub(crate) async fn reveal_live(
    app: &ReadApp,
    buffer: &mut VecDeque<Arc<LiveEvent>>,
) -> Result<(), privacy::Error> {
    let opener = opener_for_texts(app, buffer.iter().map(|e| e.data.as_str())).await?;
    for event in buffer.iter_mut() {
        let data = opener.reveal_json_text(&event.data);
        if data != event.data {
            *event = Arc::new(LiveEvent {
                position: event.position,
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                event_type: event.event_type.clone(),
                data,
            });
        }
    }
    Ok(())
}
