//! `/v1/scripts`: the loaded generation, the last reload error, and reload on demand.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::json;

use super::auth::Scope;
use super::conversations::Reply;
use super::error::ApiError;
use super::Api;
use crate::error::EngineError;

pub(super) async fn status(State(api): State<Api>) -> Reply {
    Ok(Json(json!(api.handle.script_status().await?)))
}

/// Reloads the scripts folder. Scripts serve every unit, so only an all-units token may.
pub(super) async fn reload(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply {
    if !scope.sees_everything() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "reloading scripts needs a token for all units (\"*\")",
        ));
    }
    match api.handle.reload().await {
        Ok(generation) => Ok(Json(json!({ "generation": generation }))),
        Err(EngineError::Load(e)) => Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: "scripts_rejected",
            message: format!("{e}; the previous generation keeps running"),
            field: None,
        }),
        Err(e) => Err(e.into()),
    }
}
