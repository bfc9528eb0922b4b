//! `/v1/events`: offers and state changes as server-sent events, filtered by agent or queue,
//! numbered so a client that reconnects picks up where it was.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Scope;
use super::error::Params;
use super::Api;
use crate::runtime::{EventHistory, Since};
use crate::update::{Brief, LabelledUpdate};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    /// Only what concerns this agent.
    agent: Option<String>,
    /// Only what concerns this queue.
    queue: Option<String>,
    /// For clients that cannot send the `Last-Event-ID` header.
    last_event_id: Option<String>,
    /// The token, for clients that cannot send headers (the authentication reads it).
    #[serde(rename = "access_token")]
    _access_token: Option<String>,
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

/// How long a client waits before reconnecting (the `retry:` the stream starts with).
const RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Each update is one event named by its type (`offered`, `agent_state`, ...) with the update
/// as JSON and its `id:`. A client that reconnects with `Last-Event-ID` (the header
/// `EventSource` sends, or `?last_event_id=`) first gets what it missed, from the recent
/// events the engine keeps; when that is more than they hold, or the id is of an earlier run,
/// a `reset` event says to read the state again. A reader too slow for the stream gets a
/// `lagged` event saying how many it missed.
pub(super) async fn stream(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
    Params(filter): Params<Filter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // Subscribed before the history is read: nothing can fall between the two.
    let rx = api.handle.subscribe();
    let history = api.handle.events().cloned();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| filter.last_event_id.clone());
    let sse = |history: &Option<EventHistory>, e: &LabelledUpdate| {
        let (kind, json) = Brief(&e.stamped).to_json();
        let event = SseEvent::default().event(kind).data(json.to_string());
        match history {
            Some(h) => event.id(h.id(e)),
            None => event,
        }
    };
    let mut first = vec![SseEvent::default().retry(RETRY)];
    // Live events up to this number were in the missed ones.
    let mut seen = 0;
    if let Some(last) = last {
        match history.as_ref().map(|h| h.since(&last)) {
            Some(Since::Missed(missed)) => {
                seen = missed.last().map_or(0, |e| e.seq);
                first.extend(missed.iter().filter(|e| filter.admits(&scope, e)).map(|e| sse(&history, e)));
            }
            Some(Since::Reset) | None => {
                let why = "the events since that id are no longer kept; read the state again";
                first.push(SseEvent::default().event("reset").data(serde_json::json!({ "reason": why }).to_string()));
            }
        }
    }
    let live = stream::unfold(
        (rx, scope, filter, api.closing, history),
        move |(mut rx, scope, filter, mut closing, history)| async move {
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    // A dropped closer never closes: only `true` ends the stream.
                    Ok(_) = closing.wait_for(|c| *c) => return None,
                };
                let event = match received {
                    // Not the ones already sent as missed (with none missed, or no history: all).
                    Ok(event) if (seen == 0 || event.seq > seen) && filter.admits(&scope, &event) => {
                        sse(&history, &event)
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        SseEvent::default().event("lagged").data(format!("{{\"missed\":{n}}}"))
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (rx, scope, filter, closing, history)));
            }
        },
    );
    Sse::new(stream::iter(first.into_iter().map(Ok)).chain(live)).keep_alive(KeepAlive::default())
}
