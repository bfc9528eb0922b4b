//! `/v1/scripts`: the loaded generation, the last reload error, and reload on demand.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;

use super::auth::Scope;
use super::error::{ApiError, Reply};
use super::Api;
use crate::engine::ScriptStatus;
use crate::error::EngineError;

/// The generation a reload installed.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Reloaded {
    generation: u64,
}

pub(super) async fn status(State(api): State<Api>) -> Reply<ScriptStatus> {
    Ok(Json(api.any().script_status().await?))
}

/// Reloads the scripts folder. Scripts serve every unit, so only an all-units token may.
pub(super) async fn reload(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply<Reloaded> {
    if !scope.sees_everything() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "reloading scripts needs a token for all units (\"*\")",
        ));
    }
    match api.engines.reload().await {
        Ok(generation) => Ok(Json(Reloaded { generation })),
        Err(EngineError::Load(e)) => Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: "scripts_rejected",
            message: format!("{e}; the previous generation keeps running"),
            field: None,
        }),
        Err(e) => Err(e.into()),
    }
}
