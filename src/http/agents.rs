//! `/v1/agents`: the directory, presence, status, pauses, work day, vacations and employment
//! in; agents out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Scope;
use super::conversations::{Acted, Nothing, Reply};
use super::error::{ApiError, Body};
use super::views::Changes;
use super::{views, Api};
use crate::directory::AgentRecord;
use crate::error::InputError;
use crate::input::Input;
use crate::rules::DEFAULT_UNIT;

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

/// `POST /v1/agents`: `{"id": "olga", "unit": "north", "email": ..., "queues": [...]}`.
pub async fn create(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Body(mut body): Body<Map<String, Value>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = match body.remove("id") {
        Some(Value::String(id)) => id,
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_field", "`id` (a string) is required").field("id")),
    };
    let record: AgentRecord = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("request body: {e}")))?;
    let unit = record.unit.clone().unwrap_or_else(|| DEFAULT_UNIT.into());
    if !scope.allows(&unit) {
        let message = format!("this token may not create agents in unit `{unit}`");
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).field("unit"));
    }
    api.handle.submit(Input::CreateAgent { agent: id.clone(), record: Box::new(record) }).await?;
    let agent = api.handle.read(move |e| e.agent(&id).map(|a| views::agent(e, a))).await?;
    Ok((StatusCode::CREATED, Json(agent.unwrap_or_default())))
}

/// `PATCH /v1/agents/{id}`: the fields given change, `null` clears an optional one.
pub async fn update(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Body(record): Body<AgentRecord>,
) -> Reply {
    let input = Input::UpdateAgent { agent: id.clone(), record: Box::new(record) };
    let _updates = act(State(api.clone()), Extension(scope), id.clone(), input).await?;
    let agent = api.handle.read(move |e| e.agent(&id).map(|a| views::agent(e, a))).await?;
    Ok(Json(agent.unwrap_or_default()))
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

pub async fn sign_in(api: State<Api>, scope: Extension<Scope>, Path(agent): Path<String>, _: Body<Nothing>) -> Acted {
    act(api, scope, agent.clone(), Input::SignIn { agent }).await
}

pub async fn sign_out(api: State<Api>, scope: Extension<Scope>, Path(agent): Path<String>, _: Body<Nothing>) -> Acted {
    act(api, scope, agent.clone(), Input::SignOut { agent }).await
}

pub async fn presence(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<PresenceBody>,
) -> Acted {
    act(api, scope, agent.clone(), Input::SetPresence { agent, presence: b.presence }).await
}

pub async fn status(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<StatusBody>,
) -> Acted {
    act(api, scope, agent.clone(), Input::SetStatus { agent, status: b.status }).await
}

pub async fn pause(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<PauseBody>,
) -> Acted {
    act(api, scope, agent.clone(), Input::Pause { agent, cause: b.cause }).await
}

pub async fn resume(api: State<Api>, scope: Extension<Scope>, Path(agent): Path<String>, _: Body<Nothing>) -> Acted {
    act(api, scope, agent.clone(), Input::Resume { agent }).await
}

pub async fn start_work_day(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    _: Body<Nothing>,
) -> Acted {
    act(api, scope, agent.clone(), Input::StartWorkDay { agent }).await
}

pub async fn end_work_day(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    _: Body<Nothing>,
) -> Acted {
    act(api, scope, agent.clone(), Input::EndWorkDay { agent }).await
}

pub async fn vacations(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<VacationsBody>,
) -> Acted {
    let periods = b.periods.into_iter().map(|p| (p.from, p.to)).collect();
    act(api, scope, agent.clone(), Input::SetVacations { agent, periods }).await
}

pub async fn employment(
    api: State<Api>,
    scope: Extension<Scope>,
    Path(agent): Path<String>,
    Body(b): Body<EmploymentBody>,
) -> Acted {
    act(api, scope, agent.clone(), Input::SetDismissed { agent, dismissed: b.dismissed }).await
}

/// Submits an input about an agent if the token may touch that agent; replies with its updates.
async fn act(State(api): State<Api>, Extension(scope): Extension<Scope>, agent: String, input: Input) -> Acted {
    let updates = api
        .handle
        .submit_guarded(input, move |e| match e.agent(&agent) {
            Some(a) if scope.allows(&a.def.unit) => Ok(()),
            _ => Err(InputError::UnknownAgent(agent)),
        })
        .await?;
    Ok(Json(Changes { id: None, updates }))
}
