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

#[derive(Clone, Deserialize, schemars::JsonSchema)]
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
///
/// With several partitions the stream is every reached partition's, merged as they come; an
/// event's id holds where the stream was in each partition (their ids joined by `~`), so a
/// client resuming from it picks up in each where it was.
pub(super) async fn stream(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
    Params(filter): Params<Filter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| filter.last_event_id.clone());
    let count = api.engines.handles().len();
    // Where the client was in each partition (an id of another partitioning: nowhere known).
    let lasts: Vec<Option<String>> = match &last {
        None => vec![None; count],
        Some(last) if count == 1 => vec![Some(last.clone())],
        Some(last) => match last.split('~').map(str::to_string).collect::<Vec<_>>() {
            parts if parts.len() == count => parts.into_iter().map(Some).collect(),
            _ => vec![Some(String::new()); count],
        },
    };
    let mut first = vec![SseEvent::default().retry(RETRY)];
    let mut positions = vec![String::new(); count];
    let mut reset = false;
    let mut missed_events = Vec::new();
    let mut lives = Vec::new();
    for (p, handle) in api.reached(&scope) {
        // Subscribed before the history is read: nothing can fall between the two.
        let rx = handle.subscribe();
        let history = handle.events().cloned();
        // Live events up to this number were in the missed ones.
        let mut seen = 0;
        if let Some(h) = &history {
            positions[p] = h.latest();
        }
        if let Some(last) = &lasts[p] {
            match history.as_ref().map(|h| h.since(last)) {
                Some(Since::Missed(missed)) => {
                    seen = missed.last().map_or(0, |e| e.seq);
                    positions[p] = last.clone();
                    missed_events.extend(missed.into_iter().filter(|e| filter.admits(&scope, e)).map(|e| (p, e)));
                }
                Some(Since::Reset) | None => reset = true,
            }
        }
        lives.push(live(p, rx, seen, scope.clone(), filter.clone(), api.closing.clone()).boxed());
    }
    if reset {
        let why = "the events since that id are no longer kept; read the state again";
        first.push(SseEvent::default().event("reset").data(serde_json::json!({ "reason": why }).to_string()));
    }
    let histories: Vec<Option<EventHistory>> = api.engines.handles().iter().map(|h| h.events().cloned()).collect();
    let mut name = move |p: usize, e: &LabelledUpdate| {
        let (kind, json) = Brief(&e.stamped).to_json();
        let event = SseEvent::default().event(kind).data(json.to_string());
        match &histories[p] {
            Some(h) => {
                positions[p] = h.id(e);
                event.id(positions.join("~"))
            }
            None => event,
        }
    };
    first.extend(missed_events.iter().map(|(p, e)| name(*p, e)));
    let live = stream::select_all(lives).map(move |(p, item)| {
        Ok(match item {
            Ok(event) => name(p, &event),
            Err(n) => SseEvent::default().event("lagged").data(format!("{{\"missed\":{n}}}")),
        })
    });
    Sse::new(stream::iter(first.into_iter().map(Ok)).chain(live)).keep_alive(KeepAlive::default())
}

/// One partition's live events the stream admits, after the `seen` ones (sent as missed),
/// tagged with the partition; `Err(n)`: `n` were missed by a reader too slow.
fn live(
    p: usize,
    rx: tokio::sync::broadcast::Receiver<LabelledUpdate>,
    seen: u64,
    scope: Scope,
    filter: Filter,
    closing: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = (usize, Result<LabelledUpdate, u64>)> {
    stream::unfold((rx, scope, filter, closing), move |(mut rx, scope, filter, mut closing)| async move {
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                // A dropped closer never closes: only `true` ends the stream.
                Ok(_) = closing.wait_for(|c| *c) => return None,
            };
            let item = match received {
                // Not the ones already sent as missed (with none missed, or no history: all).
                Ok(event) if (seen == 0 || event.seq > seen) && filter.admits(&scope, &event) => Ok(event),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => Err(n),
                Err(RecvError::Closed) => return None,
            };
            return Some(((p, item), (rx, scope, filter, closing)));
        }
    })
}
