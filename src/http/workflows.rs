//! Workflows over the API: the definitions with their stage numbers, the task list (the seed's
//! alerter), and the instances with their history. Pushing a button, setting a conversation on a
//! workflow and resolving a flagged instance are actions (see `routes`).

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Scope;
use super::conversations::Reply;
use super::error::ApiError;
use super::Api;
use crate::error::InputError;
use crate::instance::InstanceStatus;
use crate::views;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PushBody {
    pub button: String,
    /// Who pushed it, kept in the instance's history.
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartBody {
    pub workflow: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    /// The event whose stage the instance goes on at; without one it finishes.
    #[serde(default)]
    pub event: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    conversation: Option<String>,
    workflow: Option<String>,
    /// For instances: running, flagged or finished.
    status: Option<String>,
}

/// `GET /v1/workflows`: every workflow of the token's units, stages numbered.
pub(super) async fn list(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply {
    let workflows = api
        .handle
        .read(move |e| {
            e.rules()
                .workflows
                .values()
                .filter(|w| scope.allows(&w.unit))
                .map(|w| views::workflow(e, w))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "workflows": workflows })))
}

/// `GET /v1/tasks?conversation=&workflow=`: open tasks, oldest first, and the instances flagged
/// for a person.
pub(super) async fn tasks(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Query(f): Query<Filter>,
) -> Reply {
    if f.status.is_some() {
        return Err(ApiError::bad_field("status", "tasks are filtered by `conversation` and `workflow` only"));
    }
    let (tasks, flagged) = api
        .handle
        .read(move |e| {
            let wanted = |i: &crate::instance::Instance| {
                scope.allows(&i.unit)
                    && f.conversation.as_deref().is_none_or(|c| crate::unit::external(&i.conversation) == c)
                    && f.workflow.as_deref().is_none_or(|w| i.workflow == w)
            };
            let tasks: Vec<_> =
                e.open_tasks().into_iter().filter(|(i, _)| wanted(i)).map(|(i, t)| views::task(e, i, t)).collect();
            let flagged: Vec<_> = e
                .instances()
                .filter(|i| i.status == InstanceStatus::Flagged && wanted(i))
                .map(|i| views::instance(i, false))
                .collect();
            (tasks, flagged)
        })
        .await?;
    Ok(Json(json!({ "tasks": tasks, "flagged": flagged })))
}

/// `GET /v1/workflow_instances?status=&conversation=&workflow=`.
pub(super) async fn instances(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Query(f): Query<Filter>,
) -> Reply {
    let status = match f.status.as_deref() {
        None => None,
        Some("running") => Some(InstanceStatus::Running),
        Some("flagged") => Some(InstanceStatus::Flagged),
        Some("finished") => Some(InstanceStatus::Finished),
        Some(other) => {
            let message = format!("status `{other}` is not one of running, flagged, finished");
            return Err(ApiError::bad_field("status", message));
        }
    };
    let list = api
        .handle
        .read(move |e| {
            e.instances()
                .filter(|i| scope.allows(&i.unit))
                .filter(|i| status.is_none_or(|s| i.status == s))
                .filter(|i| f.conversation.as_deref().is_none_or(|c| crate::unit::external(&i.conversation) == c))
                .filter(|i| f.workflow.as_deref().is_none_or(|w| i.workflow == w))
                .map(|i| views::instance(i, false))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "instances": list })))
}

/// `GET /v1/workflow_instances/{id}`: one instance with its history.
pub(super) async fn instance(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Reply {
    let number = id.parse::<u64>().ok();
    let found = api
        .handle
        .read(move |e| e.instance(number?).filter(|i| scope.allows(&i.unit)).map(|i| views::instance(i, true)))
        .await?;
    found.map(Json).ok_or_else(|| ApiError::from(InputError::UnknownInstance(id)))
}
