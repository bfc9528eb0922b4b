//! Actions on the agent or conversation a path names (`POST /v1/agents/{id}/pause`, ...): the
//! request becomes one engine input, the token's units are checked against its subject on the
//! engine thread right before it, and the reply lists what it changed.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::Scope;
use super::conversations::UnitParam;
use super::error::{ApiError, Body};
use super::Api;
use crate::engine::Engine;
use crate::error::InputError;
use crate::input::Input;
use crate::views::Changes;

/// The reply to an action: the updates it caused.
pub type Acted = Result<Json<Changes>, ApiError>;

/// The body of an action that takes none (`{}` or empty).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

/// What the `{id}` of an action's path names.
#[derive(Clone, Copy, Debug)]
pub enum Subject {
    Agent,
    Conversation,
    /// An open task of a workflow instance.
    Task,
    /// A workflow instance.
    Instance,
}

impl Subject {
    /// Refuses an input about `id` if the token may not touch it; another unit's things look
    /// like things that do not exist.
    fn admit(self, engine: &Engine, scope: &Scope, id: String) -> Result<(), InputError> {
        match self {
            Subject::Agent => match engine.agent(&id) {
                Some(a) if scope.allows(&a.def.unit) => Ok(()),
                _ => Err(InputError::UnknownAgent(id)),
            },
            Subject::Conversation => match engine.conversation_scope(&id) {
                Some((_, unit)) if scope.allows(unit) => Ok(()),
                _ => Err(InputError::UnknownConversation(id)),
            },
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
pub async fn act(api: &Api, scope: Scope, subject: Subject, id: String, input: Input) -> Acted {
    let updates = api.handle.submit_guarded(input, move |e| subject.admit(e, &scope, id)).await?;
    Ok(Json(Changes { id: None, updates }))
}

/// What `on` makes: an axum handler of an action on a path's id with a body `B`.
pub trait ActionHandler<B>:
    Fn(State<Api>, Extension<Scope>, Path<String>, Query<UnitParam>, Body<B>) -> BoxFuture<'static, Acted>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<B, F> ActionHandler<B> for F where
    F: Fn(State<Api>, Extension<Scope>, Path<String>, Query<UnitParam>, Body<B>) -> BoxFuture<'static, Acted>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The handler of an action whose input is made from the path's id and a body `B`. A
/// conversation's id is first turned into the engine's key within the token's units (ids live
/// per unit; `?unit=` picks one when the token sees the id in several).
pub fn on<B>(subject: Subject, make: fn(String, B) -> Input) -> impl ActionHandler<B>
where
    B: DeserializeOwned + Send + 'static,
{
    move |State(api), Extension(scope), Path(id), Query(unit), Body(body)| {
        Box::pin(async move {
            let id = match subject {
                Subject::Conversation => {
                    let scope = scope.clone();
                    let key = api.handle.read(move |e| e.resolve_conversation(&id, |u| unit.admits(&scope, u))).await?;
                    key?.to_string()
                }
                _ => id,
            };
            let input = make(id.clone(), body);
            act(&api, scope, subject, id, input).await
        })
    }
}
