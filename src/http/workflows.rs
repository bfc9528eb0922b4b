//! Workflows over the API: the definitions with their stage numbers, the task list (the seed's
//! alerter), and the instances with their history. Pushing a button, setting a conversation on a
//! workflow and resolving a flagged instance are actions (see `routes`).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::auth::Scope;
use super::error::{ApiError, Params, Reply};
use super::page::{self, PageQuery};
use super::Api;
use crate::error::InputError;
use crate::instance::{Instance, InstanceStatus};
use crate::unit::external;
use crate::views::{self, TaskView, WorkflowView};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushBody {
    pub button: String,
    /// Who pushed it, kept in the instance's history.
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StartBody {
    pub workflow: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    /// The event whose stage the instance goes on at; without one it finishes.
    #[serde(default)]
    pub event: Option<String>,
}

/// `GET /v1/tasks`: oldest first.
#[derive(Deserialize, JsonSchema)]
pub(super) struct TaskQuery {
    conversation: Option<String>,
    workflow: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /v1/workflow_instances`: oldest first.
#[derive(Deserialize, JsonSchema)]
pub(super) struct InstanceQuery {
    status: Option<InstanceStatus>,
    conversation: Option<String>,
    workflow: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct WorkflowList {
    workflows: Vec<WorkflowView>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TaskList {
    tasks: Vec<TaskView>,
    /// Instances stopped until a person says how they go on (all of them, not paged).
    flagged: Vec<Instance>,
    /// Pass as `cursor` for the next page of tasks; `null` on the last one.
    next_cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct InstanceList {
    instances: Vec<Instance>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Whether an instance is of the conversation and workflow asked for.
fn of(i: &Instance, conversation: Option<&str>, workflow: Option<&str>) -> bool {
    conversation.is_none_or(|c| external(&i.conversation) == c) && workflow.is_none_or(|w| i.workflow == w)
}

pub(super) async fn list(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply<WorkflowList> {
    let reach = scope.clone();
    let workflows = api
        .each(&reach, move |e| {
            e.rules()
                .workflows
                .values()
                .filter(|w| scope.allows(&w.unit))
                .map(|w| views::workflow(e, w))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(WorkflowList { workflows: workflows.into_iter().flatten().collect() }))
}

pub(super) async fn tasks(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Params(f): Params<TaskQuery>,
) -> Reply<TaskList> {
    let page = f.page.read()?;
    let (f, paged, reach) = (std::sync::Arc::new(f), page.clone(), scope.clone());
    let parts = api
        .each(&reach, move |e| {
            let wanted =
                |i: &Instance| scope.allows(&i.unit) && of(i, f.conversation.as_deref(), f.workflow.as_deref());
            let open = e.open_tasks().into_iter().filter(|(i, _)| wanted(i)).map(|(i, t)| (page::key(t.id), (i, t)));
            let tasks = paged.keyed(open, false).into_iter().map(|(key, (i, t))| (key, views::task(e, i, t))).collect();
            let flagged: Vec<_> = e
                .instances()
                .filter(|i| i.status == InstanceStatus::Flagged && wanted(i))
                .map(|i| views::instance(i, false))
                .collect();
            (tasks, flagged)
        })
        .await?;
    let (tasks, flagged): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let (tasks, next_cursor) = page.merge(tasks, false);
    Ok(Json(TaskList { tasks, flagged: flagged.into_iter().flatten().collect(), next_cursor }))
}

pub(super) async fn instances(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Params(f): Params<InstanceQuery>,
) -> Reply<InstanceList> {
    let page = f.page.read()?;
    let (f, paged, reach) = (std::sync::Arc::new(f), page.clone(), scope.clone());
    let parts = api
        .each(&reach, move |e| {
            let mut found: Vec<_> = e
                .instances()
                .filter(|i| scope.allows(&i.unit) && f.status.is_none_or(|s| i.status == s))
                .filter(|i| of(i, f.conversation.as_deref(), f.workflow.as_deref()))
                .map(|i| (page::key(i.id), i))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            paged.keyed(found, false).into_iter().map(|(key, i)| (key, views::instance(i, false))).collect()
        })
        .await?;
    let (instances, next_cursor) = page.merge(parts, false);
    Ok(Json(InstanceList { instances, next_cursor }))
}

pub(super) async fn instance(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Reply<Instance> {
    let number = id.parse::<u64>().ok();
    let found = api
        .numbered(number.unwrap_or(1))
        .read(move |e| e.instance(number?).filter(|i| scope.allows(&i.unit)).map(|i| views::instance(i, true)))
        .await?;
    found.map(Json).ok_or_else(|| ApiError::from(InputError::UnknownInstance(id)))
}
