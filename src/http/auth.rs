//! Bearer tokens, each scoped to organization units; a small middleware instead of tower-http's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;

/// A token from the config file: `{ token = "...", units = ["north"], name = "pbx" }`; `"*"`
/// is every unit. The name (`token 1`, `token 2`, ... in config order without one) is what the
/// request log shows, never the token itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Token {
    pub token: String,
    pub units: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Token {
    /// A bearer token that sees `units` (`"*"` for every unit).
    pub fn new(token: impl Into<String>, units: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Token { token: token.into(), units: units.into_iter().map(Into::into).collect(), name: None }
    }

    /// The token, named for the request log.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// What one request may see and change.
#[derive(Clone, Debug)]
pub struct Scope {
    units: Arc<[String]>,
    /// Who the caller is, for the request log.
    caller: Arc<str>,
}

impl Scope {
    /// A caller who may see and change `units` (`"*"`: every unit). A host that authenticates
    /// callers itself ([`super::Auth::Host`]) puts one into each request's extensions.
    pub fn units<U: Into<String>>(units: impl IntoIterator<Item = U>) -> Scope {
        Scope { units: units.into_iter().map(Into::into).collect(), caller: Arc::from("host") }
    }

    /// The scope, with the caller's name for the request log (`host` unless named).
    pub fn named(mut self, caller: impl Into<String>) -> Scope {
        self.caller = Arc::from(caller.into());
        self
    }

    pub fn allows(&self, unit: &str) -> bool {
        self.units.iter().any(|u| u == "*" || u == unit)
    }

    /// Whether one of the units it may see is one `holds` says yes to (every unit: `"*"`).
    pub(super) fn reaches(&self, holds: impl Fn(&str) -> bool) -> bool {
        self.units.iter().any(|u| u == "*" || holds(u))
    }

    /// May see updates that belong to no unit (script log lines).
    pub fn sees_everything(&self) -> bool {
        self.units.iter().any(|u| u == "*")
    }
}

#[derive(Clone, Default)]
pub(super) struct Tokens(Arc<HashMap<String, Scope>>);

impl Tokens {
    pub(super) fn new(tokens: &[Token]) -> Self {
        let scope = |n: usize, t: &Token| Scope {
            units: t.units.clone().into(),
            caller: Arc::from(t.name.clone().unwrap_or_else(|| format!("token {}", n + 1))),
        };
        Tokens(Arc::new(tokens.iter().enumerate().map(|(n, t)| (t.token.clone(), scope(n, t))).collect()))
    }
}

/// Rejects a request without a known bearer token; otherwise hands its [`Scope`] on.
pub(super) async fn require_token(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    // A browser's `EventSource` cannot send headers: the event stream also takes the token as
    // `?access_token=` (only there, so tokens stay out of other URLs and their logs).
    let presented = from_header.or_else(|| match req.uri().path().ends_with("/v1/events") {
        true => req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("access_token=")).map(str::to_string)),
        false => None,
    });
    let presented = presented.as_deref();
    let scope = match presented {
        None => return unauthorized("send `Authorization: Bearer <token>`"),
        // Comparing in constant time would matter for remote guessing; a map lookup hashes first,
        // which already hides how much of a token matched.
        Some(t) => match tokens.0.get(t) {
            Some(scope) => scope.clone(),
            None => return unauthorized("the bearer token is not known"),
        },
    };
    answer(scope, req, next).await
}

/// Who asked, on the response: the request log reads it there.
#[derive(Clone)]
pub(super) struct Caller(pub(super) Arc<str>);

/// Runs the request as `scope`, and names the caller on the response for the request log.
async fn answer(scope: Scope, mut req: Request, next: Next) -> Response {
    let caller = Caller(scope.caller.clone());
    req.extensions_mut().insert(scope);
    let mut response = next.run(req).await;
    response.extensions_mut().insert(caller);
    response
}

/// With [`super::Auth::Host`]: the host's own middleware decided who the caller is and put a
/// [`Scope`] into the request; a request it let through without one is refused.
pub(super) async fn require_scope(req: Request, next: Next) -> Response {
    match req.extensions().get::<Scope>().cloned() {
        Some(scope) => answer(scope, req, next).await,
        None => unauthorized("the host's authentication gave this request no rota scope"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}
