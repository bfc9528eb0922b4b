//! `/v1/agents`: the directory in, agents out, and the bodies of the agent actions (presence,
//! status, pauses, vacations, employment; see `routes()` for the inputs they make).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::actions::{act, Subject};
use super::auth::Scope;
use super::conversations::UnitParam;
use super::error::{ApiError, Body, Params, Reply};
use super::page::{self, PageQuery};
use super::Api;
use crate::agent::State as AgentState;
use crate::directory::AgentRecord;
use crate::error::InputError;
use crate::input::Input;
use crate::presence::BaseStatus;
use crate::rules::DEFAULT_UNIT;
use crate::views::{self, AgentView};

/// `GET /v1/agents`: in the order they were created.
#[derive(Deserialize, JsonSchema)]
pub(super) struct ListQuery {
    /// `waiting`, `offered`, `busy`, `post_processing`, `missed`, `paused`, ...
    state: Option<AgentState>,
    /// A presence id (`training`), or a base status (`available`, `away`, `offline`, ...).
    presence: Option<String>,
    unit: Option<String>,
    /// Members of this queue.
    queue: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct AgentList {
    agents: Vec<AgentView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

pub(super) async fn list(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Params(q): Params<ListQuery>,
) -> Reply<AgentList> {
    let page = q.page.read()?;
    let (q, reach) = (std::sync::Arc::new(q), scope.clone());
    let (asked, paged) = (q.clone(), page.clone());
    let parts = api
        .each(&reach, move |e| {
            let (q, page) = (&asked, &paged);
            let queue = match &q.queue {
                Some(id) => match e.rules().queue_index(id) {
                    Some(ix) if scope.allows(&e.rules().queues[ix].unit) => Some(ix as u32),
                    // Another partition's queue: none of this one's agents are in it.
                    None if e.partition().of.count() > 1 => return Ok(None),
                    _ => return Err(InputError::UnknownQueue(id.clone())),
                },
                None => None,
            };
            let found = e
                .agents()
                .iter()
                .filter(|a| scope.allows(&a.def.unit) && q.unit.as_deref().is_none_or(|u| a.def.unit == u))
                .filter(|a| q.state.is_none_or(|s| a.state == s))
                .filter(|a| {
                    q.presence
                        .as_deref()
                        .is_none_or(|p| a.presence == p || p.parse::<BaseStatus>().ok() == Some(a.base))
                })
                .filter(|a| queue.is_none_or(|ix| a.queues.contains(&ix)))
                .map(|a| (page::across(e, page::key(a.ix as u64)), a));
            let list = page.keyed(found, false).into_iter().map(|(key, a)| (key, views::agent(e, a))).collect();
            Ok(Some(list))
        })
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, InputError>>()?;
    // A queue no partition holds is unknown.
    if let (Some(id), true) = (&q.queue, parts.iter().all(Option::is_none)) {
        return Err(InputError::UnknownQueue(id.clone()).into());
    }
    let (agents, next_cursor) = page.merge(parts.into_iter().flatten().collect(), false);
    Ok(Json(AgentList { agents, next_cursor }))
}

pub(super) async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Params(unit): Params<UnitParam>,
) -> Reply<AgentView> {
    view(&api, scope, unit, id).await
}

/// Agent `id` as the token sees it (ids live per unit; `unit` picks one).
async fn view(api: &Api, scope: Scope, unit: UnitParam, id: String) -> Reply<AgentView> {
    let reach = scope.clone();
    let ambiguous = |units| InputError::AmbiguousAgent { id: id.clone(), units };
    let find = {
        let id = id.clone();
        move |e: &crate::engine::Engine| {
            let key = e.resolve_agent(&id, |u| unit.admits(&scope, u))?;
            let agent =
                e.agent(&key).map(|a| views::agent(e, a)).ok_or_else(|| InputError::UnknownAgent(id.clone()))?;
            Ok((key, agent))
        }
    };
    Ok(Json(api.find(&reach, find, ambiguous).await?.1))
}

/// `POST /v1/agents`'s body: the id and the directory fields (read as an [`AgentRecord`]
/// once the id is taken out, so an unknown field is named).
#[derive(JsonSchema)]
#[schemars(description = "A new agent: its id and the directory fields.")]
#[allow(dead_code)] // Describes the body; the handler reads it in two steps.
pub(super) struct NewAgent {
    id: String,
    #[serde(flatten)]
    record: AgentRecord,
}

/// `POST /v1/agents`: `{"id": "olga", "unit": "north", "email": ..., "queues": [...]}`.
pub(super) async fn create(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Body(mut body): Body<Map<String, Value>>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    let id = match body.remove("id") {
        Some(Value::String(id)) => id,
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_field", "`id` (a string) is required").field("id")),
    };
    let record: AgentRecord = super::error::from_json(Value::Object(body))?;
    let unit = record.unit.clone().unwrap_or_else(|| DEFAULT_UNIT.into());
    if !scope.allows(&unit) {
        let message = format!("this token may not create agents in unit `{unit}`");
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).field("unit"));
    }
    let handle = api.unit(&unit);
    handle.submit(Input::CreateAgent { agent: id.clone(), record: Box::new(record) }).await?;
    let key = crate::unit::key(&unit, &id);
    let agent = handle.read(move |e| e.agent(&key).map(|a| views::agent(e, a))).await?;
    let agent = agent.ok_or_else(|| ApiError::from(InputError::UnknownAgent(id)))?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// `PATCH /v1/agents/{id}`: the fields given change, `null` clears an optional one.
pub(super) async fn update(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Params(unit): Params<UnitParam>,
    Body(record): Body<AgentRecord>,
) -> Reply<AgentView> {
    // The guard resolves the id within the token's units and puts the key in the input.
    let input = Input::UpdateAgent { agent: id.clone(), record: Box::new(record) };
    let _updates = act(&api, scope.clone(), unit.clone(), Subject::Agent, id.clone(), input).await?;
    view(&api, scope, unit, id).await
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PresenceBody {
    pub presence: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    pub status: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    pub cause: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Period {
    pub from: String,
    pub to: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VacationsBody {
    pub periods: Vec<Period>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EmploymentBody {
    pub dismissed: bool,
}
