//! `/v1/conversations`: conversations in, their actions, and their state with the decision trace.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Scope;
use super::error::{ApiError, Body, Params};
use super::page::{self, PageQuery};
use super::Api;
use crate::conversation::{AttemptOutcome, Conversation, ConversationStatus, NewConversation};
use crate::engine::Engine;
use crate::error::InputError;
use crate::input::Input;
use crate::time::Timestamp;
use crate::unit::external;
use crate::views::{self, Changes, ConversationView};

pub(super) async fn create(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Body(new): Body<NewConversation>,
) -> Result<(StatusCode, Json<Changes>), ApiError> {
    if new.id.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_field", "`id` must not be empty").field("id"));
    }
    let id = new.id.clone();
    let queue = new.queue.clone();
    let handle = api.locate(&scope, move |e| e.queue_unit(&queue).is_some()).await?;
    let updates =
        handle.submit_guarded(Input::Arrive(Box::new(new)), move |e, input| arrival(e, &scope, input)).await?;
    Ok((StatusCode::CREATED, Json(Changes { id: Some(id), updates })))
}

pub(super) async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Params(unit): Params<UnitParam>,
) -> Result<Json<ConversationView>, ApiError> {
    let reach = scope.clone();
    let ambiguous = |units| InputError::AmbiguousConversation { id: id.clone(), units };
    let find = {
        let id = id.clone();
        move |e: &Engine| {
            let key = e.resolve_conversation(&id, |u| unit.admits(&scope, u))?;
            let c = e.conversation(&key).map(|c| views::conversation(e, c));
            Ok((key, c.ok_or_else(|| InputError::UnknownConversation(id.clone()))?))
        }
    };
    Ok(Json(api.find(&reach, find, ambiguous).await?.1))
}

/// `GET /v1/conversations`: newest first.
#[derive(Deserialize, JsonSchema)]
pub(super) struct ListQuery {
    /// `queued`, `offered`, `assigned`, `post_processing`, `closed`, `abandoned`, `gave_up`, `max_wait_exceeded`.
    status: Option<ConversationStatus>,
    queue: Option<String>,
    /// An agent it rings for or who holds it (talking or in wrap-up).
    agent: Option<String>,
    unit: Option<String>,
    /// Arrived at or after this time (RFC 3339).
    from: Option<String>,
    /// Arrived before this time (RFC 3339).
    to: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ConversationList {
    conversations: Vec<ConversationView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Whether agent `id` holds the conversation or it rings for them.
fn with_agent(c: &Conversation, id: &str) -> bool {
    let ringing = c.attempts.iter().any(|t| t.outcome == AttemptOutcome::Pending && external(&t.agent) == id);
    ringing || c.agent.as_deref().map(external) == Some(id)
}

/// A time bound of a list, or a 400 naming the parameter.
pub(super) fn time_param(name: &'static str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| Timestamp::parse_rfc3339(t).map_err(|m| ApiError::bad_field(name, m))).transpose()
}

pub(super) async fn list(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Params(q): Params<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    let page = q.page.read()?;
    let (from, to) = (time_param("from", q.from.as_deref())?, time_param("to", q.to.as_deref())?);
    let (q, paged, reach) = (std::sync::Arc::new(q), page.clone(), scope.clone());
    let parts = api
        .each(&reach, move |e| {
            let (q, page) = (&q, &paged);
            let mut found: Vec<_> = e
                .conversations()
                .filter(|c| q.status.is_none_or(|s| c.status == s))
                .filter(|c| from.is_none_or(|t| c.arrived_at >= t) && to.is_none_or(|t| c.arrived_at < t))
                .filter(|c| q.agent.as_deref().is_none_or(|a| with_agent(c, a)))
                .filter_map(|c| {
                    let (queue, unit) = e.scope_of(c);
                    let wanted = scope.allows(unit)
                        && q.unit.as_deref().is_none_or(|u| u == unit)
                        && q.queue.as_deref().is_none_or(|w| w == queue);
                    wanted.then(|| (format!("{}{}", page::key(c.arrived_at.0.max(0) as u64), c.id), c))
                })
                .collect();
            found.sort_by(|a, b| b.0.cmp(&a.0));
            page.keyed(found, true).into_iter().map(|(key, c)| (key, views::conversation_summary(e, c))).collect()
        })
        .await?;
    let (conversations, next_cursor) = page.merge(parts, true);
    Ok(Json(ConversationList { conversations, next_cursor }))
}

/// Refuses an arrival in a queue the token may not use; another unit's queue is answered like
/// one that does not exist.
pub(super) fn arrival(engine: &Engine, scope: &Scope, input: &Input) -> Result<(), InputError> {
    let Input::Arrive(new) = input else { return Ok(()) };
    match engine.queue_unit(&new.queue) {
        Some(unit) if scope.allows(unit) => Ok(()),
        _ => Err(InputError::UnknownQueue(new.queue.clone())),
    }
}

/// `?unit=`: which unit's conversation an id means, for a token that sees several units
/// where more than one has a conversation of that id (ids live per unit).
#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UnitParam {
    /// Which unit's thing the id means, when the token sees several that have one.
    pub unit: Option<String>,
}

impl UnitParam {
    /// Whether the caller may mean a conversation of `unit`.
    pub(super) fn admits(&self, scope: &Scope, unit: &str) -> bool {
        scope.allows(unit) && self.unit.as_deref().is_none_or(|u| u == unit)
    }
}

/// `PATCH /v1/conversations/{id}`: attributes to set (`null` removes one) and the skills it
/// needs, replacing the ones it had.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConversationChange {
    #[serde(default)]
    pub(super) attributes: std::collections::BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) requires: Option<std::collections::BTreeMap<String, f64>>,
    #[serde(default)]
    pub(super) priority: Option<i64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentRef {
    /// Without it: whoever the conversation is offered to.
    pub agent: Option<String>,
}
