//! Actions on the agent or conversation a path names (`POST /v1/agents/{id}/pause`, ...): the
//! request becomes one engine input, the token's units are checked against its subject on the
//! engine thread right before it, and the reply lists what it changed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::Scope;
use super::conversations::UnitParam;
use super::error::{ApiError, Body, Params};
use super::Api;
use crate::engine::Engine;
use crate::error::InputError;
use crate::input::Input;
use crate::runtime::Handle;
use crate::views::Changes;

/// The reply to an action: the updates it caused.
pub(super) type Acted = Result<Json<Changes>, ApiError>;

/// The body of an action that takes none (`{}` or empty).
/// No body (or `{}`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Nothing {}

/// What the `{id}` of an action's path names.
#[derive(Clone, Copy, Debug)]
pub(super) enum Subject {
    Agent,
    Conversation,
    /// An open task of a workflow instance.
    Task,
    /// A workflow instance.
    Instance,
}

impl Subject {
    /// Refuses an input about `id` if the token may not touch it; another unit's things look
    /// like things that do not exist. An agent's or a conversation's id becomes the engine's key
    /// within the token's units (ids live per unit; `unit` picks one when the token sees it in
    /// several).
    pub(super) fn admit(
        self,
        engine: &Engine,
        scope: &Scope,
        unit: &UnitParam,
        id: String,
        input: &mut Input,
    ) -> Result<(), InputError> {
        match self {
            Subject::Agent => {
                let key = engine.resolve_agent(&id, |u| unit.admits(scope, u))?;
                if let Some(named) = input.agent_mut() {
                    *named = key.to_string();
                }
                Ok(())
            }
            Subject::Conversation => {
                let key = engine.resolve_conversation(&id, |u| unit.admits(scope, u))?;
                if let Some(named) = input.conversation_mut() {
                    *named = key.to_string();
                }
                Ok(())
            }
            Subject::Task => match id.parse::<u64>().ok().and_then(|n| engine.task_instance(n)) {
                Some(i) if scope.allows(&i.unit) => Ok(()),
                _ => Err(InputError::UnknownTask(id)),
            },
            Subject::Instance => match id.parse::<u64>().ok().and_then(|n| engine.instance(n)) {
                Some(i) if scope.allows(&i.unit) => Ok(()),
                _ => Err(InputError::UnknownInstance(id)),
            },
        }
    }
}

/// Submits `input` about `subject` `id` if the token may touch it; replies with its updates.
pub(super) async fn act(api: &Api, scope: Scope, unit: UnitParam, subject: Subject, id: String, input: Input) -> Acted {
    let handle = subject.engine(api, &scope, &unit, &id).await?;
    let updates = handle.submit_guarded(input, move |e, input| subject.admit(e, &scope, &unit, id, input)).await?;
    Ok(Json(Changes { id: None, updates }))
}

impl Subject {
    /// The engine holding subject `id`: the partition of the unit it resolves in (its guard
    /// resolves it again there), or the one that numbered the task or instance.
    async fn engine(self, api: &Api, scope: &Scope, unit: &UnitParam, id: &str) -> Result<Arc<Handle>, ApiError> {
        if api.engines.handles().len() == 1 {
            return Ok(api.any().clone());
        }
        let reach = scope.clone();
        let (scope, unit, id) = (scope.clone(), unit.clone(), id.to_string());
        match self {
            Subject::Agent => {
                let ambiguous = |units| InputError::AmbiguousAgent { id: id.clone(), units };
                let find_id = id.clone();
                let find = move |e: &Engine| Ok((e.resolve_agent(&find_id, |u| unit.admits(&scope, u))?, ()));
                Ok(api.find(&reach, find, ambiguous).await?.0)
            }
            Subject::Conversation => {
                let ambiguous = |units| InputError::AmbiguousConversation { id: id.clone(), units };
                let find_id = id.clone();
                let find = move |e: &Engine| Ok((e.resolve_conversation(&find_id, |u| unit.admits(&scope, u))?, ()));
                Ok(api.find(&reach, find, ambiguous).await?.0)
            }
            // An id that is not a number is refused by the guard, wherever it runs.
            Subject::Task | Subject::Instance => Ok(api.numbered(id.parse().unwrap_or(1)).clone()),
        }
    }
}

/// What `on` makes: an axum handler of an action on a path's id with a body `B`.
pub(super) trait ActionHandler<B>:
    Fn(State<Api>, Extension<Scope>, Path<String>, Params<UnitParam>, Body<B>) -> BoxFuture<'static, Acted>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<B, F> ActionHandler<B> for F where
    F: Fn(State<Api>, Extension<Scope>, Path<String>, Params<UnitParam>, Body<B>) -> BoxFuture<'static, Acted>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The handler of an action whose input is made from the path's id and a body `B` (`?unit=`
/// picks a conversation's unit, see [`Subject::admit`]).
pub(super) fn on<B>(subject: Subject, make: fn(String, B) -> Input) -> impl ActionHandler<B>
where
    B: DeserializeOwned + Send + 'static,
{
    move |State(api), Extension(scope), Path(id), Params(unit), Body(body)| {
        Box::pin(async move {
            let input = make(id.clone(), body);
            act(&api, scope, unit, subject, id, input).await
        })
    }
}
