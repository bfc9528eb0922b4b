//! `/v1/presences`, `/v1/pause_causes` and `/v1/teams`: the definitions a client shows in its
//! pickers (what an agent may show, why they may pause) and the team settings behind them.

use axum::extract::State;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::error::Reply;
use super::Api;
use crate::presence::BaseStatus;
use crate::rules::MissAction;

#[derive(Serialize, JsonSchema)]
pub(super) struct PresenceList {
    presences: Vec<Presence>,
}

/// A presence an agent can show.
#[derive(Serialize, JsonSchema)]
struct Presence {
    id: String,
    /// As people read it: `Away - in training`.
    text: String,
    /// What routing makes of it.
    base: BaseStatus,
    /// Whether an agent may pick it (`inactive` is the system's, after a missed offer).
    selectable: bool,
    /// The one an agent has after signing in.
    default: bool,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct PauseCauseList {
    pause_causes: Vec<PauseCause>,
}

#[derive(Serialize, JsonSchema)]
struct PauseCause {
    id: String,
    text: String,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TeamList {
    teams: Vec<Team>,
}

#[derive(Serialize, JsonSchema)]
struct Team {
    id: String,
    wrap_up_ms: i64,
    no_answer_delay_ms: i64,
    max_no_answer: u32,
    /// What an agent becomes after letting offers time out: `missed` or `inactive`.
    on_miss: &'static str,
    /// Conversations per channel at once: `"exclusive"` or a number.
    #[schemars(schema_with = "crate::views::capacity_schema")]
    capacity: Value,
}

pub(super) async fn presences(State(api): State<Api>) -> Reply<PresenceList> {
    let presences = api
        .any()
        .read(|e| {
            let rules = e.rules();
            let default = rules.presences.default_id().to_string();
            rules
                .presences
                .all()
                .map(|p| Presence {
                    id: p.id.clone(),
                    text: p.text.clone(),
                    base: p.base,
                    selectable: rules.presences.selectable(&p.id).is_ok(),
                    default: p.id == default,
                })
                .collect()
        })
        .await?;
    Ok(Json(PresenceList { presences }))
}

pub(super) async fn pause_causes(State(api): State<Api>) -> Reply<PauseCauseList> {
    let pause_causes = api
        .any()
        .read(|e| {
            e.rules().pause_causes.iter().map(|(id, text)| PauseCause { id: id.clone(), text: text.clone() }).collect()
        })
        .await?;
    Ok(Json(PauseCauseList { pause_causes }))
}

pub(super) async fn teams(State(api): State<Api>) -> Reply<TeamList> {
    let teams = api
        .any()
        .read(|e| {
            e.rules()
                .teams
                .values()
                .map(|t| Team {
                    id: t.id.clone(),
                    wrap_up_ms: t.wrap_up.0,
                    no_answer_delay_ms: t.no_answer_delay.0,
                    max_no_answer: t.max_no_answer,
                    on_miss: match t.on_miss {
                        MissAction::Missed => "missed",
                        MissAction::Inactive => "inactive",
                    },
                    capacity: t.capacity.to_json(),
                })
                .collect()
        })
        .await?;
    Ok(Json(TeamList { teams }))
}
