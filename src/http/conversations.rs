//! `/v1/conversations`: conversations in, their actions, and their state with the decision trace.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Scope;
use super::error::{ApiError, Body};
use super::views::{self, Changes};
use super::Api;
use crate::conversation::NewConversation;
use crate::error::InputError;
use crate::input::Input;

pub async fn create(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Body(new): Body<NewConversation>,
) -> Result<(StatusCode, Json<Changes>), ApiError> {
    if new.id.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_field", "`id` must not be empty").field("id"));
    }
    let (id, queue) = (new.id.clone(), new.queue.clone());
    let updates = api
        .handle
        .submit_guarded(Input::Arrive(Box::new(new)), move |e| match e.queue_unit(&queue) {
            Some(unit) if scope.allows(unit) => Ok(()),
            _ => Err(InputError::UnknownQueue(queue)),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(Changes { id: Some(id), updates })))
}

pub async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = api
        .handle
        .read({
            let id = id.clone();
            move |e| {
                let (_, unit) = e.conversation_scope(&id)?;
                let c = e.conversation(&id).filter(|_| scope.allows(unit))?;
                Some(views::conversation(e, c))
            }
        })
        .await?;
    found.map(Json).ok_or_else(|| ApiError::from(InputError::UnknownConversation(id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRef {
    agent: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

pub async fn accept(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(id): Path<String>,
    Body(b): Body<AgentRef>,
) -> Acted {
    act(api, scope, id.clone(), Input::Accept { conversation: id, agent: b.agent }).await
}

pub async fn decline(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(id): Path<String>,
    Body(b): Body<AgentRef>,
) -> Acted {
    act(api, scope, id.clone(), Input::Decline { conversation: id, agent: b.agent }).await
}

pub async fn close(api: State<Api>, scope: Extension<Scope>, Path(id): Path<String>, _: Body<Nothing>) -> Acted {
    act(api, scope, id.clone(), Input::Close { conversation: id }).await
}

pub async fn abandon(api: State<Api>, scope: Extension<Scope>, Path(id): Path<String>, _: Body<Nothing>) -> Acted {
    act(api, scope, id.clone(), Input::Abandon { conversation: id }).await
}

pub type Reply = Result<Json<Value>, ApiError>;

/// The reply to an action: the updates it caused.
pub type Acted = Result<Json<Changes>, ApiError>;

/// Submits an input about conversation `id` if the token may touch it; replies with its updates.
async fn act(State(api): State<Api>, Extension(scope): Extension<Scope>, id: String, input: Input) -> Acted {
    let updates = api
        .handle
        .submit_guarded(input, move |e| match e.conversation_scope(&id) {
            Some((_, unit)) if scope.allows(unit) => Ok(()),
            _ => Err(InputError::UnknownConversation(id)),
        })
        .await?;
    Ok(Json(Changes { id: None, updates }))
}
