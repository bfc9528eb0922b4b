//! `/v1/conversations`: conversations in, their actions, and their state with the decision trace.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Scope;
use super::error::{ApiError, Body};
use super::Api;
use crate::conversation::NewConversation;
use crate::engine::Engine;
use crate::error::InputError;
use crate::input::Input;
use crate::views::{self, Changes};

pub(super) async fn create(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Body(new): Body<NewConversation>,
) -> Result<(StatusCode, Json<Changes>), ApiError> {
    if new.id.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_field", "`id` must not be empty").field("id"));
    }
    let id = new.id.clone();
    let updates =
        api.handle.submit_guarded(Input::Arrive(Box::new(new)), move |e, input| arrival(e, &scope, input)).await?;
    Ok((StatusCode::CREATED, Json(Changes { id: Some(id), updates })))
}

pub(super) async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(unit): Query<UnitParam>,
) -> Result<Json<Value>, ApiError> {
    let found = api
        .handle
        .read(move |e| {
            let key = e.resolve_conversation(&id, |u| unit.admits(&scope, u))?;
            Ok::<_, InputError>(e.conversation(&key).map(|c| views::conversation(e, c)).unwrap_or_default())
        })
        .await??;
    Ok(Json(found))
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
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnitParam {
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConversationChange {
    #[serde(default)]
    pub(super) attributes: std::collections::BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) requires: Option<std::collections::BTreeMap<String, f64>>,
    #[serde(default)]
    pub(super) priority: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentRef {
    /// Without it: whoever the conversation is offered to.
    pub agent: Option<String>,
}

pub(super) type Reply = Result<Json<Value>, ApiError>;
