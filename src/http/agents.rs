//! `/v1/agents`: presence, status, pauses, work day, vacations and employment in; agents out.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Scope;
use super::conversations::{Nothing, Reply};
use super::error::{ApiError, Body};
use super::{views, Api};
use crate::error::InputError;
use crate::input::Input;

pub async fn list(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply {
    let agents = api
        .handle
        .read(move |e| {
            e.agents().iter().filter(|a| scope.allows(&a.def.unit)).map(|a| views::agent(e, a)).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "agents": agents })))
}

pub async fn show(State(api): State<Api>, Extension(scope): Extension<Scope>, Path(id): Path<String>) -> Reply {
    let found = api
        .handle
        .read({
            let id = id.clone();
            move |e| e.agent(&id).filter(|a| scope.allows(&a.def.unit)).map(|a| views::agent(e, a))
        })
        .await?;
    found.map(Json).ok_or_else(|| ApiError::from(InputError::UnknownAgent(id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    presence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    cause: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VacationsBody {
    periods: Vec<Period>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmploymentBody {
    dismissed: bool,
}

pub async fn sign_in(api: State<Api>, scope: Extension<Scope>, Path(agent): Path<String>, _: Body<Nothing>) -> Reply {
    act(api, scope, agent.clone(), Input::SignIn { agent }).await
}

pub async fn sign_out(api: State<Api>, scope: Extension<Scope>, Path(agent): Path<String>, _: Body<Nothing>) -> Reply {
    act(api, scope, agent.clone(), Input::SignOut { agent }).await
}

pub async fn presence(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<PresenceBody>,
) -> Reply {
    act(api, scope, agent.clone(), Input::SetPresence { agent, presence: b.presence }).await
}

pub async fn status(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<StatusBody>,
) -> Reply {
    act(api, scope, agent.clone(), Input::SetStatus { agent, status: b.status }).await
}

pub async fn pause(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<PauseBody>,
) -> Reply {
    act(api, scope, agent.clone(), Input::Pause { agent, cause: b.cause }).await
}

pub async fn resume(api: State<Api>, scope: Extension<Scope>, Path(agent): Path<String>, _: Body<Nothing>) -> Reply {
    act(api, scope, agent.clone(), Input::Resume { agent }).await
}

pub async fn start_work_day(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    _: Body<Nothing>,
) -> Reply {
    act(api, scope, agent.clone(), Input::StartWorkDay { agent }).await
}

pub async fn end_work_day(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    _: Body<Nothing>,
) -> Reply {
    act(api, scope, agent.clone(), Input::EndWorkDay { agent }).await
}

pub async fn vacations(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<VacationsBody>,
) -> Reply {
    let periods = b.periods.into_iter().map(|p| (p.from, p.to)).collect();
    act(api, scope, agent.clone(), Input::SetVacations { agent, periods }).await
}

pub async fn employment(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<EmploymentBody>,
) -> Reply {
    act(api, scope, agent.clone(), Input::SetDismissed { agent, dismissed: b.dismissed }).await
}

/// Submits an input about an agent if the token may touch that agent; replies with its updates.
async fn act(State(api): State<Api>, Extension(scope): Extension<Scope>, agent: String, input: Input) -> Reply {
    let updates = api
        .handle
        .submit_guarded(input, move |e| match e.agent(&agent) {
            Some(a) if scope.allows(&a.def.unit) => Ok(()),
            _ => Err(InputError::UnknownAgent(agent)),
        })
        .await?;
    Ok(Json(json!({ "updates": updates })))
}
