//! API errors: every refusal is a status code and a JSON body that says what to fix.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EngineError, InputError};

/// An API error, answered as `application/problem+json` (RFC 9457):
/// `{"type": "urn:rota:problem:unknown_agent", "title": "unknown_agent", "status": 404,
/// "detail": "unknown agent `x`", "code": "unknown_agent", "field": "agent"}`, with `error`
/// and `message` repeating `code` and `detail` for clients written before.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<std::borrow::Cow<'static, str>>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, error, message: message.into(), field: None }
    }

    /// A request body that is not the JSON the route takes, naming the field at fault.
    pub fn bad_json(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let field = field_at(e.path(), &e.inner().to_string());
        let error = ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("request body: {}", e.inner()));
        match field {
            Some(f) => error.field(f),
            None => error,
        }
    }

    /// A query parameter (or field) that is wrong in itself: 400 `invalid_field` naming it.
    pub fn bad_field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message).field(field)
    }

    pub fn field(mut self, field: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// The body of every error the API answers: RFC 9457 problem details, with `code` (stable,
/// for programs) and `field` (the one field at fault), and `error` and `message` repeating
/// `code` and `detail` for clients written before.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// `urn:rota:problem:CODE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// What went wrong and what to fix, for people.
    pub detail: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub error: &'static str,
    pub message: String,
}

impl ApiError {
    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:rota:problem:{}", self.error),
            title: self.error,
            status: self.status.as_u16(),
            detail: self.message.clone(),
            code: self.error,
            field: self.field.as_ref().map(|f| f.to_string()),
            error: self.error,
            message: self.message.clone(),
        }
    }
}

/// The media type of every error the API answers.
pub(super) const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        (self.status, [(axum::http::header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

/// Makes every error response a problem document, also those no handler of ours wrote: a
/// method a route does not take (axum's bare 405, its `Allow` header kept), a query string
/// or path the extractors refused (their text becomes the detail), a request that ran out of
/// time (the timeout layer's bare 503).
/// Refuses a query parameter the route does not take, the same way on every route, naming it
/// and what the route takes (a route declares its parameters in the route table).
pub(super) async fn known_query(req: Request, next: axum::middleware::Next) -> Response {
    if let Some(query) = req.uri().query().filter(|q| !q.is_empty()) {
        let takes = super::query_of(req.method().as_str(), req.uri().path());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            if !takes.iter().any(|t| t == name) {
                let list = if takes.is_empty() { "none".to_string() } else { takes.join(", ") };
                let message = format!("unknown query parameter `{name}` (this route takes: {list})");
                return ApiError::new(StatusCode::BAD_REQUEST, "unknown_query_parameter", message)
                    .field(name.to_string())
                    .into_response();
            }
        }
    }
    next.run(req).await
}

pub(super) async fn problems(req: Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let response = next.run(req).await;
    let status = response.status();
    let ours = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if status.as_u16() < 400 || ours {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let text = text.unwrap_or_default().trim().to_string();
    let (code, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = super::methods_of(&path).join(", ");
            if let Ok(value) = axum::http::HeaderValue::from_str(&allowed) {
                parts.headers.insert(axum::http::header::ALLOW, value);
            }
            ("method_not_allowed", format!("this route does not take {method}; it takes {allowed}"))
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT if text.is_empty() => {
            ("timeout", "the request took longer than the server allows; try again".to_string())
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("bad_body", text),
        StatusCode::BAD_REQUEST => ("bad_request", text),
        _ => ("error", if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text }),
    };
    let problem = ApiError::new(status, code, detail).problem();
    parts.headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(serde_json::to_vec(&problem).unwrap_or_default()))
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let message = e.to_string();
        match e {
            InputError::UnknownAgent(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_agent", message).field("agent")
            }
            InputError::UnknownQueue(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_queue", message).field("queue")
            }
            InputError::UnknownConversation(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_conversation", message),
            InputError::AmbiguousConversation { .. } => {
                ApiError::new(StatusCode::CONFLICT, "ambiguous_conversation", message).field("unit")
            }
            InputError::AmbiguousAgent { .. } => {
                ApiError::new(StatusCode::CONFLICT, "ambiguous_agent", message).field("unit")
            }
            InputError::DuplicateAgent(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_agent", message).field("id")
            }
            InputError::Invalid { field, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).field(field)
            }
            InputError::DuplicateConversation(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_conversation", message).field("id")
            }
            InputError::UnknownPresence(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_presence", message).field("presence")
            }
            InputError::UnknownPauseCause(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_pause_cause", message).field("cause")
            }
            InputError::Illegal(_) => ApiError::new(StatusCode::CONFLICT, "illegal_state_change", message),
            InputError::UnknownWorkflow(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_workflow", message).field("workflow")
            }
            InputError::UnknownTask(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_task", message),
            InputError::UnknownInstance(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_instance", message),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Input(e) => e.into(),
            EngineError::Load(e) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scripts_rejected", e.to_string()),
            EngineError::Unsupported(m) => ApiError::new(StatusCode::BAD_REQUEST, "unsupported", m),
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine_stopped", other.to_string()),
        }
    }
}

/// A JSON request body whose every problem (not JSON, a missing or mistyped field, an unknown
/// field, too large) is a 4xx [`ApiError`] naming it.
pub(super) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            ApiError::new(e.status(), "bad_body", format!("cannot read the request body: {}", e.body_text()))
        })?;
        Body::parse(&bytes)
    }
}

impl<T: DeserializeOwned> Body<T> {
    /// A body already read (empty reads as `{}`).
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let text = if bytes.is_empty() { &b"{}"[..] } else { bytes };
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(text))
            .map(Body)
            .map_err(ApiError::bad_json)
    }
}

/// JSON already parsed, read into `T` as a body is.
pub(super) fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(ApiError::bad_json)
}

/// The field a deserialization error is about: where it happened, or the field it names
/// (`missing field `id``, `unknown field `colour``) when that is the top level.
fn field_at(path: &serde_path_to_error::Path, message: &str) -> Option<String> {
    let at = Some(path.to_string()).filter(|p| p != ".");
    let named = message.split_once("field `").and_then(|(_, rest)| rest.split_once('`')).map(|(f, _)| f.to_string());
    // A missing field's path is the object it is missing from; every other path ends at it.
    match (at, named) {
        (Some(at), Some(f)) if message.starts_with("missing field") => Some(format!("{at}.{f}")),
        (Some(at), _) => Some(at),
        (None, named) => named,
    }
}

/// Query parameters read into `T`: one that does not fit (a word for a number, a status
/// that is not one) is a 400 naming it, like a body's field.
pub(super) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let reader = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(reader).map(Params).map_err(|e| {
            let message = e.inner().to_string();
            let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", format!("query: {message}"));
            match field_at(e.path(), &message) {
                Some(f) => error.field(f),
                None => error,
            }
        })
    }
}

/// What a handler answers: JSON of a type, or a problem.
pub(super) type Reply<T> = Result<axum::Json<T>, ApiError>;
