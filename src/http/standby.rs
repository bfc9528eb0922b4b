//! Standby duty over the API: the notification log (filter, read, retry by hand), custom events,
//! template previews, who is on duty, and where a definition is used.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::Scope;
use super::conversations::Reply;
use super::error::ApiError;
use super::Api;
use crate::notification::{DeliveryStatus, Filter};
use crate::template::Kind;
use crate::time::Timestamp;

fn no_log() -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, "no_store", "this engine keeps no notifications (it has no store)")
}

fn unknown_notification(id: u64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_notification", format!("no notification {id}"))
}

/// `GET /v1/notifications?status=dead&recipient=ivan&conversation=c-1&limit=50`, newest first.
pub(super) async fn list(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Query(filter): Query<Filter>,
) -> Reply {
    if let Some(status) = &filter.status {
        if DeliveryStatus::parse(status).is_none() {
            let message = format!("status `{status}` is not one of pending, sent, dead");
            return Err(ApiError::bad_field("status", message));
        }
    }
    let log = api.handle.notification_log().ok_or_else(no_log)?;
    let entries = log.lock().unwrap_or_else(|e| e.into_inner()).list(&filter).map_err(store_error)?;
    let entries: Vec<_> = entries.into_iter().filter(|e| scope.allows(&e.notification.unit)).collect();
    Ok(Json(json!({ "notifications": entries })))
}

/// One notification with every delivery attempt.
pub(super) async fn show(State(api): State<Api>, Extension(scope): Extension<Scope>, Path(id): Path<u64>) -> Reply {
    let log = api.handle.notification_log().ok_or_else(no_log)?;
    let found = log.lock().unwrap_or_else(|e| e.into_inner()).get(id).map_err(store_error)?;
    match found {
        Some((entry, attempts)) if scope.allows(&entry.notification.unit) => {
            let mut v = serde_json::to_value(&entry).unwrap_or_default();
            v["attempts_log"] = json!(attempts);
            Ok(Json(v))
        }
        _ => Err(unknown_notification(id)),
    }
}

/// Puts a dead notification back in line.
pub(super) async fn retry(State(api): State<Api>, Extension(scope): Extension<Scope>, Path(id): Path<u64>) -> Reply {
    let log = api.handle.notification_log().ok_or_else(no_log)?;
    let entry = log.lock().unwrap_or_else(|e| e.into_inner()).get(id).map_err(store_error)?;
    let Some((entry, _)) = entry.filter(|(e, _)| scope.allows(&e.notification.unit)) else {
        return Err(unknown_notification(id));
    };
    if entry.status != DeliveryStatus::Dead {
        let message = format!("notification {id} is {}; only a dead one can be retried", entry.status.as_str());
        return Err(ApiError::new(StatusCode::CONFLICT, "not_dead", message));
    }
    api.handle.revive_notification(id)?;
    Ok(Json(json!({ "id": id, "status": "pending" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    pub event: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewQuery {
    /// `notification` (default) or `clearing`.
    kind: Option<String>,
    conversation: Option<String>,
    recipient: Option<String>,
}

/// `GET /v1/templates/{id}/preview`: the message as it would be sent.
pub(super) async fn preview(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Reply {
    let kind = match q.kind.as_deref() {
        None | Some("notification") => Kind::Notification,
        Some("clearing") => Kind::Clearing,
        Some(other) => {
            let message = format!("kind `{other}` is not notification or clearing");
            return Err(ApiError::bad_field("kind", message));
        }
    };
    let rendered = api
        .handle
        .read(move |e| {
            let unit = e.rules().templates.get(&id).map(|t| t.unit.clone());
            if !unit.is_some_and(|u| scope.allows(&u)) {
                return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_template", format!("no template `{id}`")));
            }
            let conversation = match &q.conversation {
                Some(c) => Some(e.resolve_conversation(c, |u| scope.allows(u))?),
                None => None,
            };
            e.preview(&id, kind, conversation.as_deref(), q.recipient.as_deref()).map_err(ApiError::from)
        })
        .await??;
    Ok(Json(json!(rendered)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AtQuery {
    /// RFC 3339; now by default.
    at: Option<String>,
}

/// `GET /v1/schedules/{id}/on_duty?at=...`: who is on duty, and by which layer.
pub(super) async fn on_duty(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Query(q): Query<AtQuery>,
) -> Reply {
    let at = match &q.at {
        Some(t) => Some(Timestamp::parse_rfc3339(t).map_err(|m| ApiError::bad_field("at", m))?),
        None => None,
    };
    api.handle
        .read(move |e| {
            let at = at.unwrap_or_else(|| e.clock_now());
            match e.rules().schedules.get(&id).filter(|s| scope.allows(&s.unit)) {
                Some(s) => Ok(Json(json!({ "schedule": id, "at": at, "on_duty": s.on_duty(at) }))),
                None => Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_schedule", format!("no schedule `{id}`"))),
            }
        })
        .await?
}

/// `GET /v1/where_used/{id}`: the queues and rules that use a template, standby rule or schedule.
pub(super) async fn where_used(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Reply {
    api.handle
        .read(move |e| {
            let rules = e.rules();
            // Users share their definition's unit (the load checks it), so its unit decides.
            if !rules.unit_of(&id).is_some_and(|u| scope.allows(u)) {
                let message = format!("`{id}` is not a template, standby rule or schedule");
                return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_definition", message));
            }
            Ok(Json(json!({ "id": id, "used_by": rules.users_of(&id) })))
        })
        .await?
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_failed", e.to_string())
}
