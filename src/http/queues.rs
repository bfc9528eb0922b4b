//! `/v1/queues` and `/v1/timers`: what is waiting, who could take it, and what is due when.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::auth::Scope;
use super::error::{ApiError, Params, Reply};
use super::page::{self, PageQuery};
use super::Api;
use crate::error::InputError;
use crate::timer::TimerInfo;
use crate::views::{self, QueueView};

#[derive(Serialize, JsonSchema)]
pub(super) struct QueueList {
    queues: Vec<QueueView>,
}

/// `GET /v1/timers`: in due order.
#[derive(Deserialize, JsonSchema)]
pub(super) struct TimerQuery {
    /// `offer_timeout`, `wrap_up`, `max_wait`, ...
    kind: Option<String>,
    unit: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TimerList {
    timers: Vec<TimerInfo>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

pub(super) async fn list(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply<QueueList> {
    let reach = scope.clone();
    let queues = api
        .each(&reach, move |e| {
            let rules = e.rules();
            rules
                .queues
                .iter()
                .filter(|q| scope.allows(&q.unit))
                .filter_map(|q| views::queue(e, &q.id))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(QueueList { queues: queues.into_iter().flatten().collect() }))
}

pub(super) async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Reply<QueueView> {
    let reach = scope.clone();
    let found = api
        .each(&reach, {
            let id = id.clone();
            move |e| e.queue_unit(&id).filter(|u| scope.allows(u)).and_then(|_| views::queue(e, &id))
        })
        .await?;
    found.into_iter().flatten().next().map(Json).ok_or_else(|| ApiError::from(InputError::UnknownQueue(id)))
}

/// Pending timers in due order, those of the token's units only.
pub(super) async fn timers(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Params(q): Params<TimerQuery>,
) -> Reply<TimerList> {
    let page = q.page.read()?;
    let (q, paged, reach) = (std::sync::Arc::new(q), page.clone(), scope.clone());
    let parts = api
        .each(&reach, move |e| {
            // Due order: by due time, then id (as the engine fires them).
            let due = e
                .timers()
                .into_iter()
                .filter(|t| scope.allows(&t.unit) && q.unit.as_deref().is_none_or(|u| t.unit == u))
                .filter(|t| q.kind.as_deref().is_none_or(|k| t.kind == k))
                .map(|t| (format!("{}{}", page::key(t.due.0.max(0) as u64), page::across(e, page::key(t.id))), t));
            paged.keyed(due, false)
        })
        .await?;
    let (timers, next_cursor) = page.merge(parts, false);
    Ok(Json(TimerList { timers, next_cursor }))
}
