//! `/v1/events`: offers and state changes as server-sent events, filtered by agent or queue.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Scope;
use super::Api;
use crate::update::{Brief, LabelledUpdate};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    agent: Option<String>,
    queue: Option<String>,
}

impl Filter {
    fn admits(&self, scope: &Scope, event: &LabelledUpdate) -> bool {
        let unit_ok = match &event.unit {
            Some(unit) => scope.allows(unit),
            None => scope.sees_everything(),
        };
        unit_ok
            && self.agent.as_ref().is_none_or(|a| event.agents.iter().any(|x| crate::unit::external(x) == a))
            && self.queue.as_ref().is_none_or(|q| event.queue.as_deref() == Some(q.as_str()))
    }
}

/// Each update is one event named by its type (`offered`, `agent_state`, ...) with the update
/// as JSON. A reader too slow for the stream gets a `lagged` event saying how many it missed.
pub(super) async fn stream(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Query(filter): Query<Filter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = api.handle.subscribe();
    let events = stream::unfold((rx, scope, filter, api.closing), |(mut rx, scope, filter, mut closing)| async move {
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                // A dropped closer never closes: only `true` ends the stream.
                Ok(_) = closing.wait_for(|c| *c) => return None,
            };
            let event = match received {
                Ok(event) if filter.admits(&scope, &event) => {
                    let (kind, json) = Brief(&event.stamped).to_json();
                    SseEvent::default().event(kind).data(json.to_string())
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => SseEvent::default().event("lagged").data(format!("{{\"missed\":{n}}}")),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), (rx, scope, filter, closing)));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
