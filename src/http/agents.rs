//! `/v1/agents`: the directory in, agents out, and the bodies of the agent actions (presence,
//! status, pauses, vacations, employment; see `routes()` for the inputs they make).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::actions::{act, Subject};
use super::auth::Scope;
use super::conversations::{Reply, UnitParam};
use super::error::{ApiError, Body};
use super::Api;
use crate::directory::AgentRecord;
use crate::error::InputError;
use crate::input::Input;
use crate::rules::DEFAULT_UNIT;
use crate::views;

pub(super) async fn list(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply {
    let agents = api
        .handle
        .read(move |e| {
            e.agents().iter().filter(|a| scope.allows(&a.def.unit)).map(|a| views::agent(e, a)).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "agents": agents })))
}

pub(super) async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(unit): Query<UnitParam>,
) -> Reply {
    view(&api, scope, unit, id).await
}

/// Agent `id` as the token sees it (ids live per unit; `unit` picks one).
async fn view(api: &Api, scope: Scope, unit: UnitParam, id: String) -> Reply {
    let found = api
        .handle
        .read(move |e| {
            let key = e.resolve_agent(&id, |u| unit.admits(&scope, u))?;
            Ok::<_, InputError>(e.agent(&key).map(|a| views::agent(e, a)).unwrap_or_default())
        })
        .await??;
    Ok(Json(found))
}

/// `POST /v1/agents`: `{"id": "olga", "unit": "north", "email": ..., "queues": [...]}`.
pub(super) async fn create(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Body(mut body): Body<Map<String, Value>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = match body.remove("id") {
        Some(Value::String(id)) => id,
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_field", "`id` (a string) is required").field("id")),
    };
    let record: AgentRecord = serde_json::from_value(Value::Object(body)).map_err(ApiError::bad_json)?;
    let unit = record.unit.clone().unwrap_or_else(|| DEFAULT_UNIT.into());
    if !scope.allows(&unit) {
        let message = format!("this token may not create agents in unit `{unit}`");
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).field("unit"));
    }
    api.handle.submit(Input::CreateAgent { agent: id.clone(), record: Box::new(record) }).await?;
    let key = crate::unit::key(&unit, &id);
    let agent = api.handle.read(move |e| e.agent(&key).map(|a| views::agent(e, a))).await?;
    Ok((StatusCode::CREATED, Json(agent.unwrap_or_default())))
}

/// `PATCH /v1/agents/{id}`: the fields given change, `null` clears an optional one.
pub(super) async fn update(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(unit): Query<UnitParam>,
    Body(record): Body<AgentRecord>,
) -> Reply {
    // The guard resolves the id within the token's units and puts the key in the input.
    let input = Input::UpdateAgent { agent: id.clone(), record: Box::new(record) };
    let _updates = act(&api, scope.clone(), unit.clone(), Subject::Agent, id.clone(), input).await?;
    view(&api, scope, unit, id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PresenceBody {
    pub presence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    pub status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    pub cause: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Period {
    pub from: String,
    pub to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VacationsBody {
    pub periods: Vec<Period>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmploymentBody {
    pub dismissed: bool,
}
