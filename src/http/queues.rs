//! `/v1/queues` and `/v1/timers`: what is waiting, who could take it, and what is due when.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::json;

use super::auth::Scope;
use super::conversations::Reply;
use super::error::ApiError;
use super::Api;
use crate::error::InputError;
use crate::views;

pub(super) async fn list(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply {
    let queues = api
        .handle
        .read(move |e| {
            let rules = e.rules();
            rules
                .queues
                .iter()
                .filter(|q| scope.allows(&q.unit))
                .filter_map(|q| views::queue(e, &q.id))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "queues": queues })))
}

pub(super) async fn show(State(api): State<Api>, Extension(scope): Extension<Scope>, Path(id): Path<String>) -> Reply {
    let found = api
        .handle
        .read({
            let id = id.clone();
            move |e| e.queue_unit(&id).filter(|u| scope.allows(u)).and_then(|_| views::queue(e, &id))
        })
        .await?;
    found.map(Json).ok_or_else(|| ApiError::from(InputError::UnknownQueue(id)))
}

/// Pending timers in due order, those of the token's units only.
pub(super) async fn timers(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply {
    let timers =
        api.handle.read(move |e| e.timers().into_iter().filter(|t| scope.allows(&t.unit)).collect::<Vec<_>>()).await?;
    Ok(Json(json!({ "timers": timers })))
}
