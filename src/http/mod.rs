//! The HTTP API (JSON under `/v1`), as an axum `Router` the library exports.
//!
//! This is the only module that imports axum/hyper. Every route is declared once, in
//! `routes()`: the routers and the OpenAPI document at `/v1/openapi.json` are all made from it,
//! so they cannot disagree.

mod actions;
mod agents;
mod auth;
mod batch;
mod catalog;
mod conversations;
mod error;
mod events;
mod ops;
mod queues;
mod scripts;
mod standby;
mod workflows;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

use crate::input::Input;
use crate::runtime::Handle;
pub use auth::{Scope, Token};
pub use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    handle: Arc<Handle>,
    /// Turns true when the server shuts down, so event streams end and connections can drain.
    closing: watch::Receiver<bool>,
}

/// Ends the event streams of a [`router`] when the server shuts down (dropping it never does).
pub struct Closer(watch::Sender<bool>);

impl Closer {
    pub fn close(&self) {
        let _ = self.0.send(true);
    }
}

/// Who may call the API, and what they may see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// Bearer tokens from [`ApiConfig::tokens`], each scoped to organization units.
    #[default]
    Tokens,
    /// The host authenticates callers in its own middleware and inserts a [`Scope`] into each
    /// request's extensions (`req.extensions_mut().insert(Scope::units(["north"]))`); a
    /// request without one gets 401.
    Host,
}

/// Settings of the API that are not routes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ApiConfig {
    pub tokens: Vec<Token>,
    pub auth: Auth,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a request may take before it gets a 503 (event streams excluded).
    pub timeout: Duration,
    /// Web origins whose pages may call the API (CORS); none by default.
    pub cors_origins: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tokens: Vec::new(),
            auth: Auth::Tokens,
            body_limit: 64 * 1024,
            timeout: Duration::from_secs(10),
            cors_origins: Vec::new(),
        }
    }
}

impl ApiConfig {
    /// The defaults, with bearer `tokens`.
    pub fn with_tokens(tokens: impl IntoIterator<Item = Token>) -> Self {
        ApiConfig { tokens: tokens.into_iter().collect(), ..ApiConfig::default() }
    }
}

/// One route as the OpenAPI document describes it.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Open routes need no token.
    pub open: bool,
    /// The query parameters it takes; any other is refused.
    pub query: &'static [&'static str],
}

/// How a route is guarded.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    /// Needs a token; answered within the request timeout.
    Token,
    /// Needs a token; a long-lived stream, so no timeout.
    Stream,
    /// Needs nothing (`/healthz`, `/metrics`).
    Open,
}

struct Route {
    doc: RouteDoc,
    access: Access,
    handler: MethodRouter<Api>,
}

fn route<H: Handler<T, Api>, T: 'static>(
    access: Access,
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    handler: H,
) -> Route {
    let filter = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .ok()
        .and_then(|m| MethodFilter::try_from(m).ok())
        .unwrap_or_else(|| panic!("route {path}: unsupported method {method}"));
    // Every route on an agent or conversation id takes `?unit=` (ids live per unit).
    let per_unit = path.starts_with("/v1/agents/{id}") || path.starts_with("/v1/conversations/{id}");
    let query: &'static [&'static str] = if per_unit { &["unit"] } else { &[] };
    Route {
        doc: RouteDoc { method, path, summary, open: access == Access::Open, query },
        access,
        handler: on(filter, handler),
    }
}

impl Route {
    /// The query parameters the route takes.
    fn query(mut self, names: &'static [&'static str]) -> Route {
        self.doc.query = names;
        self
    }
}

/// The query parameters of the route a request goes to (none when no route matches).
fn query_of(method: &str, path: &str) -> &'static [&'static str] {
    routes_at(path).find(|r| r.method.eq_ignore_ascii_case(method)).map_or(&[], |r| r.query)
}

/// The routes whose path pattern a request path fits (`{id}` matches any one segment), from
/// the route table, built once: the middlewares ask on every request.
fn routes_at(path: &str) -> impl Iterator<Item = &'static RouteDoc> + '_ {
    static DOCS: std::sync::OnceLock<Vec<RouteDoc>> = std::sync::OnceLock::new();
    let segments = || path.trim_end_matches('/').split('/');
    DOCS.get_or_init(route_docs).iter().filter(move |r| {
        r.path.split('/').count() == segments().count()
            && r.path.split('/').zip(segments()).all(|(w, s)| w.starts_with('{') || w == s)
    })
}

/// Every route, declared once: the router and the OpenAPI document are both built from this.
fn routes() -> Vec<Route> {
    use actions::{on, Nothing, Subject::*};
    use agents::{EmploymentBody, PauseBody, PresenceBody, StatusBody, VacationsBody};
    use conversations::{AgentRef, ConversationChange};
    use Access::{Open, Stream, Token};
    vec![
        route(Token, "post", "/v1/conversations", "Create a conversation in a queue", conversations::create),
        route(
            Token,
            "post",
            "/v1/batch",
            "Many inputs in one request, handled in order and made durable in one commit; one result each",
            batch::handle,
        ),
        route(
            Token,
            "get",
            "/v1/conversations/{id}",
            "A conversation with its attempts and decision traces",
            conversations::show,
        ),
        route(
            Token,
            "patch",
            "/v1/conversations/{id}",
            "Changes a waiting conversation's attributes or required skills; it is routed again at once",
            on(Conversation, |conversation, b: ConversationChange| Input::UpdateConversation {
                conversation,
                attributes: b.attributes,
                requires: b.requires,
                priority: b.priority,
            }),
        ),
        route(
            Token,
            "post",
            "/v1/conversations/{id}/accept",
            "An agent accepts the conversation offered to them",
            on(Conversation, |conversation, b: AgentRef| Input::Accept { conversation, agent: b.agent }),
        ),
        route(
            Token,
            "post",
            "/v1/conversations/{id}/decline",
            "An agent declines the offer",
            on(Conversation, |conversation, b: AgentRef| Input::Decline { conversation, agent: b.agent }),
        ),
        route(
            Token,
            "post",
            "/v1/conversations/{id}/close",
            "The agent finished the conversation (wrap-up starts)",
            on(Conversation, |conversation, _: Nothing| Input::Close { conversation }),
        ),
        route(
            Token,
            "post",
            "/v1/conversations/{id}/abandon",
            "The customer hung up or left",
            on(Conversation, |conversation, _: Nothing| Input::Abandon { conversation }),
        ),
        route(Token, "get", "/v1/agents", "Agents with presence, state and time in state", agents::list),
        route(
            Token,
            "post",
            "/v1/agents",
            "Create an agent: id, unit, name, team, email, phone, time_zone, skills, weight, attributes, queues",
            agents::create,
        ),
        route(Token, "get", "/v1/agents/{id}", "One agent", agents::show),
        route(
            Token,
            "patch",
            "/v1/agents/{id}",
            "Change an agent's directory fields (`null` clears team, email, phone, time_zone)",
            agents::update,
        ),
        route(
            Token,
            "post",
            "/v1/agents/{id}/sign_in",
            "Sign in: online, with the default presence",
            on(Agent, |agent, _: Nothing| Input::SignIn { agent }),
        ),
        route(
            Token,
            "post",
            "/v1/agents/{id}/sign_out",
            "Sign out",
            on(Agent, |agent, _: Nothing| Input::SignOut { agent }),
        ),
        route(
            Token,
            "put",
            "/v1/agents/{id}/presence",
            "Set the presence (`{\"presence\": \"training\"}`)",
            on(Agent, |agent, b: PresenceBody| Input::SetPresence { agent, presence: b.presence }),
        ),
        route(
            Token,
            "put",
            "/v1/agents/{id}/status",
            "Set the status: dnd, ready or callcenter",
            on(Agent, |agent, b: StatusBody| Input::SetStatus { agent, status: b.status }),
        ),
        route(
            Token,
            "post",
            "/v1/agents/{id}/pause",
            "Pause with a cause (`{\"cause\": \"lunch\"}`)",
            on(Agent, |agent, b: PauseBody| Input::Pause { agent, cause: b.cause }),
        ),
        route(
            Token,
            "post",
            "/v1/agents/{id}/resume",
            "End a pause",
            on(Agent, |agent, _: Nothing| Input::Resume { agent }),
        ),
        route(
            Token,
            "post",
            "/v1/agents/{id}/work_day/start",
            "Start the work day",
            on(Agent, |agent, _: Nothing| Input::StartWorkDay { agent }),
        ),
        route(
            Token,
            "post",
            "/v1/agents/{id}/work_day/end",
            "End the work day",
            on(Agent, |agent, _: Nothing| Input::EndWorkDay { agent }),
        ),
        route(
            Token,
            "put",
            "/v1/agents/{id}/vacations",
            "Replace the vacation periods (`[{from, to}]`, RFC 3339)",
            on(Agent, |agent, b: VacationsBody| Input::SetVacations {
                agent,
                periods: b.periods.into_iter().map(|p| (p.from, p.to)).collect(),
            }),
        ),
        route(
            Token,
            "put",
            "/v1/agents/{id}/employment",
            "Set dismissal (`{\"dismissed\": true}`)",
            on(Agent, |agent, b: EmploymentBody| Input::SetDismissed { agent, dismissed: b.dismissed }),
        ),
        route(
            Token,
            "post",
            "/v1/conversations/{id}/events",
            "Raise a custom event for standby rules (`{\"event\": \"vip\"}` is `custom:vip`)",
            on(Conversation, |conversation, b: standby::EventBody| Input::Raise { conversation, event: b.event }),
        ),
        route(
            Token,
            "get",
            "/v1/notifications",
            "The notification log, newest first (`?status=&recipient=&conversation=&limit=`)",
            standby::list,
        )
        .query(&["status", "recipient", "conversation", "unit", "limit"]),
        route(Token, "get", "/v1/notifications/{id}", "One notification with every delivery attempt", standby::show),
        route(Token, "post", "/v1/notifications/{id}/retry", "Put a dead notification back in line", standby::retry),
        route(
            Token,
            "get",
            "/v1/templates/{id}/preview",
            "Render a template (`?kind=clearing&conversation=&recipient=`; sample data without a conversation)",
            standby::preview,
        )
        .query(&["kind", "conversation", "recipient"]),
        route(
            Token,
            "get",
            "/v1/schedules/{id}/on_duty",
            "Who is on duty (`?at=` RFC 3339, now by default)",
            standby::on_duty,
        )
        .query(&["at"]),
        route(
            Token,
            "get",
            "/v1/where_used/{id}",
            "The queues and standby rules that use a template, standby rule or schedule",
            standby::where_used,
        ),
        route(
            Token,
            "post",
            "/v1/conversations/{id}/workflow",
            "Set the conversation on a workflow (`{\"workflow\": \"callback\"}`)",
            on(Conversation, |conversation, b: workflows::StartBody| Input::StartWorkflow {
                conversation,
                workflow: b.workflow,
            }),
        ),
        route(Token, "get", "/v1/workflows", "Workflows with their numbered stages", workflows::list),
        route(
            Token,
            "get",
            "/v1/tasks",
            "Open tasks, oldest first, and instances flagged for a person (`?conversation=&workflow=`)",
            workflows::tasks,
        )
        .query(&["conversation", "workflow", "status"]),
        route(
            Token,
            "post",
            "/v1/tasks/{id}/push",
            "Push a button of an open task (`{\"button\": \"done\", \"by\": \"olga\"}`)",
            // The id was checked to be an open task's number before this runs.
            on(Task, |id, b: workflows::PushBody| Input::PushButton {
                task: id.parse().unwrap_or_default(),
                button: b.button,
                by: b.by,
            }),
        ),
        route(
            Token,
            "get",
            "/v1/workflow_instances",
            "Workflow instances (`?status=running|flagged|finished&conversation=&workflow=`)",
            workflows::instances,
        )
        .query(&["conversation", "workflow", "status"]),
        route(Token, "get", "/v1/workflow_instances/{id}", "One instance with its history", workflows::instance),
        route(
            Token,
            "post",
            "/v1/workflow_instances/{id}/resolve",
            "Resolve a flagged instance: go on at `{\"event\": \"start\"}`, or finish it with `{}`",
            on(Instance, |id, b: workflows::ResolveBody| Input::ResolveWorkflow {
                instance: id.parse().unwrap_or_default(),
                event: b.event,
            }),
        ),
        route(Token, "get", "/v1/queues", "Queues with waiting conversations and available agents", queues::list),
        route(Token, "get", "/v1/presences", "Presences agents can show, with their text and base", catalog::presences),
        route(Token, "get", "/v1/pause_causes", "Causes an agent can give for a pause", catalog::pause_causes),
        route(Token, "get", "/v1/teams", "Teams with their timings and capacity", catalog::teams),
        route(Token, "get", "/v1/queues/{id}", "One queue", queues::show),
        route(Token, "get", "/v1/timers", "Pending timers in due order", queues::timers),
        route(
            Token,
            "get",
            "/v1/scripts",
            "The loaded generation of scripts and the last reload error",
            scripts::status,
        ),
        route(Token, "post", "/v1/scripts/reload", "Reload the scripts folder now (all-units token)", scripts::reload),
        route(Token, "get", "/v1/openapi.json", "This document", openapi),
        route(
            Stream,
            "get",
            "/v1/events",
            "Server-sent events: offers and state changes (`?agent=` / `?queue=` filter)",
            events::stream,
        )
        .query(&["agent", "queue", "last_event_id", "access_token"]),
        route(Open, "get", "/healthz", "200 while the engine answers", ops::healthz),
        route(Open, "get", "/metrics", "Prometheus metrics", ops::metrics),
    ]
}

/// Every route the router serves, as documented.
pub fn route_docs() -> Vec<RouteDoc> {
    routes().into_iter().map(|r| r.doc).collect()
}

/// The whole server as `rota serve` runs it: the API ([`api_router`]), the operational routes
/// ([`ops_router`]) and a JSON 404 for everything else. Call [`Closer::close`] when shutting
/// down, or open event streams keep their connections alive.
pub fn router(handle: Arc<Handle>, config: &ApiConfig) -> (Router, Closer) {
    let ops = ops_router(handle.clone());
    let (api, closer) = api_router(handle, config);
    (api.merge(ops).fallback(not_found).layer(middleware::from_fn(error::problems)), closer)
}

/// The `/v1` API over a running engine, to mount in an existing axum app: it has no fallback
/// (the host's own 404 stays), so it can be merged or nested, and it authenticates by
/// [`ApiConfig::auth`]: rota's bearer tokens, or the host's own middleware.
pub fn api_router(handle: Arc<Handle>, config: &ApiConfig) -> (Router, Closer) {
    let (closer, closing) = watch::channel(false);
    let api = Api { handle, closing };
    let (mut timed, mut streams) = (Router::new(), Router::new());
    for r in routes() {
        let group = match r.access {
            Access::Token => &mut timed,
            Access::Stream => &mut streams,
            Access::Open => continue,
        };
        *group = std::mem::take(group).route(r.doc.path, r.handler);
    }
    let routes = timed
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.timeout))
        .merge(streams)
        // Inside the authentication: a caller without a token learns nothing about parameters.
        .layer(middleware::from_fn(error::known_query));
    let protected = match config.auth {
        Auth::Tokens => {
            routes.layer(middleware::from_fn_with_state(auth::Tokens::new(&config.tokens), auth::require_token))
        }
        Auth::Host => routes.layer(middleware::from_fn(auth::require_scope)),
    };
    let api_routes = protected.layer(DefaultBodyLimit::max(config.body_limit)).with_state(api);
    let api_routes = api_routes.layer(middleware::from_fn(error::problems));
    // Outermost: a browser's preflight is answered before any token is asked for.
    (cors(api_routes, &config.cors_origins), Closer(closer))
}

/// Lets pages of `origins` call the API from a browser: the methods the routes take, and the
/// headers a client sends (the token, JSON, where an event stream left off).
fn cors(routes: Router, origins: &[String]) -> Router {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return routes;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::HeaderName::from_static("last-event-id")]);
    routes.layer(layer)
}

/// `/healthz` and `/metrics` (Prometheus), without authentication: separate from the API so a
/// host with its own may leave them out, or mount them elsewhere.
pub fn ops_router(handle: Arc<Handle>) -> Router {
    // Nothing here streams, so nothing needs closing.
    let (_, closing) = watch::channel(false);
    let mut open = Router::new();
    for r in routes().into_iter().filter(|r| matches!(r.access, Access::Open)) {
        open = open.route(r.doc.path, r.handler);
    }
    open.with_state(Api { handle, closing })
}

/// The methods the route table has for a request path (`{id}` matches any one segment).
fn methods_of(path: &str) -> Vec<String> {
    routes_at(path).map(|r| r.method.to_uppercase()).collect()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route; see /v1/openapi.json")
}

async fn openapi(State(_): State<Api>) -> Json<Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.1 document of [`route_docs`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in route_docs() {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .chain(r.query.iter().map(|name| json!({ "name": name, "in": "query", "schema": { "type": "string" } })))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": { "description": "OK" },
                "4XX": { "description": "What to fix", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
            }
        });
        if r.open {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "rota", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Problem": {
                    "description": "RFC 9457 problem details; `code` is stable, `field` names the one field at fault",
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": { "type": "string", "format": "uri" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" },
                        "code": { "type": "string" },
                        "field": { "type": "string" },
                        "error": { "type": "string", "description": "the same as `code` (older clients)" },
                        "message": { "type": "string", "description": "the same as `detail` (older clients)" }
                    }
                }
            }
        }
    })
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
