//! `/v1/presences`, `/v1/pause_causes` and `/v1/teams`: the definitions a client shows in its
//! pickers (what an agent may show, why they may pause) and the team settings behind them.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::conversations::Reply;
use super::Api;
use crate::rules::MissAction;

pub(super) async fn presences(State(api): State<Api>) -> Reply {
    let list = api
        .handle
        .read(|e| {
            let rules = e.rules();
            let default = rules.presences.default_id().to_string();
            rules
                .presences
                .all()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "text": p.text,
                        "base": p.base.as_str(),
                        // `inactive` is the system's, after a missed offer; nobody picks it.
                        "selectable": rules.presences.selectable(&p.id).is_ok(),
                        "default": p.id == default,
                    })
                })
                .collect::<Vec<Value>>()
        })
        .await?;
    Ok(Json(json!({ "presences": list })))
}

pub(super) async fn pause_causes(State(api): State<Api>) -> Reply {
    let list = api
        .handle
        .read(|e| {
            e.rules().pause_causes.iter().map(|(id, text)| json!({ "id": id, "text": text })).collect::<Vec<Value>>()
        })
        .await?;
    Ok(Json(json!({ "pause_causes": list })))
}

pub(super) async fn teams(State(api): State<Api>) -> Reply {
    let list = api
        .handle
        .read(|e| {
            e.rules()
                .teams
                .values()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "wrap_up_ms": t.wrap_up.0,
                        "no_answer_delay_ms": t.no_answer_delay.0,
                        "max_no_answer": t.max_no_answer,
                        "on_miss": match t.on_miss {
                            MissAction::Missed => "missed",
                            MissAction::Inactive => "inactive",
                        },
                        "capacity": t.capacity.to_json(),
                    })
                })
                .collect::<Vec<Value>>()
        })
        .await?;
    Ok(Json(json!({ "teams": list })))
}
