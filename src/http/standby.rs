//! Standby duty over the API: the notification log (filter, read, retry by hand), custom events,
//! template previews, who is on duty, and where a definition is used.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::auth::Scope;
use super::error::{ApiError, Params, Reply};
use super::page::{self, PageQuery};
use super::Api;
use crate::notification::{Attempt, DeliveryStatus, Filter, LogEntry};
use crate::rules::User;
use crate::schedule::OnDuty;
use crate::template::{Kind, Rendered};
use crate::time::Timestamp;

fn no_log() -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, "no_store", "this engine keeps no notifications (it has no store)")
}

fn unknown_notification(id: u64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_notification", format!("no notification {id}"))
}

/// `GET /v1/notifications?status=dead&recipient=ivan&conversation=c-1&limit=50`, newest first.
/// `GET /v1/notifications`: newest first.
#[derive(Deserialize, JsonSchema)]
pub(super) struct ListQuery {
    /// `pending`, `sent` or `dead`.
    status: Option<DeliveryStatus>,
    /// An agent id.
    recipient: Option<String>,
    conversation: Option<String>,
    unit: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct NotificationList {
    notifications: Vec<LogEntry>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

pub(super) async fn list(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Params(q): Params<ListQuery>,
) -> Reply<NotificationList> {
    let page = q.page.read()?;
    let before = match &page.after {
        Some(key) => Some(
            key.parse::<u64>()
                .map_err(|_| ApiError::bad_field("cursor", "`cursor` is not one this server gave out"))?,
        ),
        None => None,
    };
    let filter = Filter {
        status: q.status.map(|s| s.as_str().to_string()),
        recipient: q.recipient,
        conversation: q.conversation,
        unit: q.unit,
        // One more than the page: whether there is a next one.
        limit: Some(page.limit as u32 + 1),
        before,
    };
    // Each partition's log (ids are unique across them), newest first.
    let mut entries = Vec::new();
    for (_, handle) in api.reached(&scope) {
        let log = handle.notification_log().ok_or_else(no_log)?;
        entries.extend(log.lock().unwrap_or_else(|e| e.into_inner()).list(&filter).map_err(store_error)?);
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.notification.id));
    let more = entries.len() > page.limit;
    let read: Vec<_> = entries.into_iter().take(page.limit).collect();
    // The cursor goes by what was read, so entries of other units cannot stall the paging.
    let next_cursor = read.last().filter(|_| more).map(|e| page::cursor(&e.notification.id.to_string()));
    let notifications = read.into_iter().filter(|e| scope.allows(&e.notification.unit)).collect();
    Ok(Json(NotificationList { notifications, next_cursor }))
}

/// A notification with every attempt at delivering it.
#[derive(Serialize, JsonSchema)]
pub(super) struct NotificationDetail {
    #[serde(flatten)]
    entry: LogEntry,
    attempts_log: Vec<Attempt>,
}

pub(super) async fn show(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<u64>,
) -> Reply<NotificationDetail> {
    let log = api.numbered(id).notification_log().ok_or_else(no_log)?;
    let found = log.lock().unwrap_or_else(|e| e.into_inner()).get(id).map_err(store_error)?;
    match found {
        Some((entry, attempts_log)) if scope.allows(&entry.notification.unit) => {
            Ok(Json(NotificationDetail { entry, attempts_log }))
        }
        _ => Err(unknown_notification(id)),
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Retried {
    id: u64,
    status: DeliveryStatus,
}

pub(super) async fn retry(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<u64>,
) -> Reply<Retried> {
    let handle = api.numbered(id);
    let log = handle.notification_log().ok_or_else(no_log)?;
    let entry = log.lock().unwrap_or_else(|e| e.into_inner()).get(id).map_err(store_error)?;
    let Some((entry, _)) = entry.filter(|(e, _)| scope.allows(&e.notification.unit)) else {
        return Err(unknown_notification(id));
    };
    if entry.status != DeliveryStatus::Dead {
        let message = format!("notification {id} is {}; only a dead one can be retried", entry.status.as_str());
        return Err(ApiError::new(StatusCode::CONFLICT, "not_dead", message));
    }
    handle.revive_notification(id)?;
    Ok(Json(Retried { id, status: DeliveryStatus::Pending }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    pub event: String,
}

#[derive(Deserialize, JsonSchema)]
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
    Params(q): Params<PreviewQuery>,
) -> Reply<Rendered> {
    let kind = match q.kind.as_deref() {
        None | Some("notification") => Kind::Notification,
        Some("clearing") => Kind::Clearing,
        Some(other) => {
            let message = format!("kind `{other}` is not notification or clearing");
            return Err(ApiError::bad_field("kind", message));
        }
    };
    // Templates are in every partition; the conversation in its unit's.
    let handle = api
        .locate(&scope, {
            let id = id.clone();
            move |e| e.rules().templates.get(&id).is_some_and(|t| e.partition().holds(&t.unit))
        })
        .await?;
    let rendered = handle
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
    Ok(Json(rendered))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AtQuery {
    /// RFC 3339; now by default.
    at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct OnDutyReply {
    schedule: String,
    at: Timestamp,
    /// Nobody when no override or layer covers the time.
    on_duty: Option<OnDuty>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct WhereUsed {
    id: String,
    used_by: Vec<User>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ScheduleList {
    schedules: Vec<OnDutyReply>,
}

/// `GET /v1/schedules`: every schedule of the token's units, who is on duty now, by which
/// layer, and until when (the next handoff).
pub(super) async fn schedules(State(api): State<Api>, Extension(scope): Extension<Scope>) -> Reply<ScheduleList> {
    let reach = scope.clone();
    let found = api
        .each(&reach, move |e| {
            let at = e.clock_now();
            let schedules = e.rules().schedules.values().filter(|s| scope.allows(&s.unit));
            schedules.map(|s| OnDutyReply { schedule: s.id.clone(), at, on_duty: s.on_duty(at) }).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(ScheduleList { schedules: found.into_iter().flatten().collect() }))
}

/// `GET /v1/schedules/{id}/on_duty?at=...`: who is on duty, and by which layer.
pub(super) async fn on_duty(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
    Params(q): Params<AtQuery>,
) -> Reply<OnDutyReply> {
    let at = match &q.at {
        Some(t) => Some(Timestamp::parse_rfc3339(t).map_err(|m| ApiError::bad_field("at", m))?),
        None => None,
    };
    let reach = scope.clone();
    let found = api
        .each(&reach, {
            let id = id.clone();
            move |e| {
                let at = at.unwrap_or_else(|| e.clock_now());
                let schedule = e.rules().schedules.get(&id).filter(|s| scope.allows(&s.unit));
                schedule.map(|s| OnDutyReply { on_duty: s.on_duty(at), schedule: id.clone(), at })
            }
        })
        .await?;
    match found.into_iter().flatten().next() {
        Some(reply) => Ok(Json(reply)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_schedule", format!("no schedule `{id}`"))),
    }
}

/// `GET /v1/where_used/{id}`: the queues and rules that use a template, standby rule or schedule.
pub(super) async fn where_used(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    Path(id): Path<String>,
) -> Reply<WhereUsed> {
    // Users share their definition's unit (the load checks it), so its unit decides; they are
    // in that unit's partition (a template is in every one).
    let reach = scope.clone();
    let found = api
        .each(&reach, {
            let id = id.clone();
            move |e| {
                let rules = e.rules();
                rules.unit_of(&id).is_some_and(|u| scope.allows(u)).then(|| rules.users_of(&id))
            }
        })
        .await?;
    let mut found = found.into_iter().flatten().peekable();
    if found.peek().is_none() {
        let message = format!("`{id}` is not a template, standby rule or schedule");
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_definition", message));
    }
    Ok(Json(WhereUsed { used_by: found.flatten().collect(), id }))
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_failed", e.to_string())
}
