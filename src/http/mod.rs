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
mod cluster;
mod console;
mod conversations;
mod error;
mod events;
mod log;
mod openapi;
mod ops;
mod page;
mod partitions;
mod queues;
mod scripts;
mod standby;
mod waiting;
mod workflows;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{middleware, Json, Router};
use serde_json::Value;
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

use crate::input::Input;
use crate::runtime::{Handle, Partitioned};
use crate::views::{self, Changes};
pub use auth::{Scope, Token};
pub use console::console_router;
pub use error::ApiError;
pub use waiting::{standby_router, Owner, Seen, Standby};

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    /// The engine, or one per partition of the units.
    engines: Arc<Partitioned>,
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
    /// The OpenAPI `operationId`: what a generated client names the call.
    pub operation: &'static str,
    pub summary: &'static str,
    /// Open routes need no token.
    pub open: bool,
    /// The query parameters it takes; any other is refused.
    pub query: Vec<String>,
    schemas: openapi::Schemas,
}

/// How a route is guarded.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    /// Needs a token; answered within the request timeout.
    Token,
    /// Needs a token; a long-lived stream, so no timeout.
    Stream,
    /// Part of the API but needs no token (the OpenAPI document).
    Public,
    /// Operational, needs nothing (`/healthz`, `/metrics`).
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
    operation: &'static str,
    summary: &'static str,
    handler: H,
) -> Route {
    let filter = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .ok()
        .and_then(|m| MethodFilter::try_from(m).ok())
        .unwrap_or_else(|| panic!("route {path}: unsupported method {method}"));
    let doc = RouteDoc {
        method,
        path,
        operation,
        summary,
        open: matches!(access, Access::Open | Access::Public),
        query: Vec::new(),
        schemas: openapi::Schemas::default(),
    };
    let route = Route { doc, access, handler: on(filter, handler) };
    // Every route on an agent or conversation id takes `?unit=` (ids live per unit).
    match path.starts_with("/v1/agents/{id}") || path.starts_with("/v1/conversations/{id}") {
        true => route.query::<conversations::UnitParam>(),
        false => route,
    }
}

/// A route that turns its body into one input about the subject its path names, and answers
/// with what changed: its body's schema is the type the input is made from.
fn action<B>(
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    summary: &'static str,
    subject: actions::Subject,
    make: fn(String, B) -> Input,
) -> Route
where
    B: serde::de::DeserializeOwned + schemars::JsonSchema + Send + 'static,
{
    route(Access::Token, method, path, operation, summary, actions::on(subject, make)).body::<B>().reply::<Changes>()
}

impl Route {
    /// The query parameters the route takes: the fields of the type its handler reads them into.
    fn query<Q: schemars::JsonSchema>(mut self) -> Route {
        self.doc.schemas.query = Some(openapi::schema_of::<Q>);
        self.doc.query = openapi::property_names(openapi::schema_of::<Q>);
        self
    }

    /// The JSON body the route reads.
    fn body<B: schemars::JsonSchema>(mut self) -> Route {
        self.doc.schemas.body = Some(openapi::schema_of::<B>);
        self
    }

    /// The JSON the route answers with, 200.
    fn reply<R: schemars::JsonSchema>(mut self) -> Route {
        self.doc.schemas.reply = openapi::Reply::Json(200, openapi::schema_of::<R>);
        self
    }

    /// The JSON the route answers with, 201: it created something.
    fn created<R: schemars::JsonSchema>(mut self) -> Route {
        self.doc.schemas.reply = openapi::Reply::Json(201, openapi::schema_of::<R>);
        self
    }

    /// The route answers with plain text (or a stream of server-sent events, for a [`Access::Stream`]).
    fn text(mut self) -> Route {
        self.doc.schemas.reply = match self.access {
            Access::Stream => openapi::Reply::Events,
            _ => openapi::Reply::Text,
        };
        self
    }
}

/// The query parameters of the route a request goes to (none when no route matches).
fn query_of(method: &str, path: &str) -> &'static [String] {
    routes_at(path).find(|r| r.method.eq_ignore_ascii_case(method)).map_or(&[], |r| &r.query)
}

/// The route table's documentation, built once: the middlewares ask it on every request.
fn docs() -> &'static [RouteDoc] {
    static DOCS: std::sync::OnceLock<Vec<RouteDoc>> = std::sync::OnceLock::new();
    DOCS.get_or_init(route_docs)
}

/// The routes whose path pattern a request path fits (`{id}` matches any one segment).
fn routes_at(path: &str) -> impl Iterator<Item = &'static RouteDoc> + '_ {
    let segments = || path.trim_end_matches('/').split('/');
    docs().iter().filter(move |r| {
        r.path.split('/').count() == segments().count()
            && r.path.split('/').zip(segments()).all(|(w, s)| w.starts_with('{') || w == s)
    })
}

/// Every route, declared once: the router and the OpenAPI document are both built from this.
fn routes() -> Vec<Route> {
    use actions::{Nothing, Subject::*};
    use agents::{EmploymentBody, PauseBody, PresenceBody, StatusBody, VacationsBody};
    use conversations::{AgentRef, ConversationChange};
    use Access::{Open, Public, Stream, Token};
    vec![
        route(
            Token,
            "post",
            "/v1/conversations",
            "create_conversation",
            "Create a conversation in a queue",
            conversations::create,
        )
        .body::<crate::conversation::NewConversation>()
        .created::<Changes>(),
        route(
            Token,
            "get",
            "/v1/conversations",
            "list_conversations",
            "Conversations, newest first, by status, queue, agent and time of arrival",
            conversations::list,
        )
        .query::<conversations::ListQuery>()
        .reply::<conversations::ConversationList>(),
        route(
            Token,
            "post",
            "/v1/batch",
            "batch",
            "Many inputs in one request, handled in order and made durable in one commit; one result each",
            batch::handle,
        )
        .body::<batch::Batch>()
        .reply::<batch::Results>(),
        route(
            Token,
            "get",
            "/v1/conversations/{id}",
            "get_conversation",
            "A conversation with its attempts and decision traces",
            conversations::show,
        )
        .reply::<views::ConversationView>(),
        action(
            "patch",
            "/v1/conversations/{id}",
            "update_conversation",
            "Changes a waiting conversation's attributes or required skills; it is routed again at once",
            Conversation,
            |conversation, b: ConversationChange| Input::UpdateConversation {
                conversation,
                attributes: b.attributes,
                requires: b.requires,
                priority: b.priority,
            },
        ),
        action(
            "post",
            "/v1/conversations/{id}/accept",
            "accept_conversation",
            "An agent accepts the conversation offered to them",
            Conversation,
            |conversation, b: AgentRef| Input::Accept { conversation, agent: b.agent },
        ),
        action(
            "post",
            "/v1/conversations/{id}/decline",
            "decline_conversation",
            "An agent declines the offer",
            Conversation,
            |conversation, b: AgentRef| Input::Decline { conversation, agent: b.agent },
        ),
        action(
            "post",
            "/v1/conversations/{id}/close",
            "close_conversation",
            "The agent finished the conversation (wrap-up starts)",
            Conversation,
            |conversation, _: Nothing| Input::Close { conversation },
        ),
        action(
            "post",
            "/v1/conversations/{id}/abandon",
            "abandon_conversation",
            "The customer hung up or left",
            Conversation,
            |conversation, _: Nothing| Input::Abandon { conversation },
        ),
        route(Token, "get", "/v1/agents", "list_agents", "Agents with presence, state and time in state", agents::list)
            .query::<agents::ListQuery>()
            .reply::<agents::AgentList>(),
        route(
            Token,
            "post",
            "/v1/agents",
            "create_agent",
            "Create an agent: id, unit, name, team, email, phone, time_zone, skills, weight, attributes, queues",
            agents::create,
        )
        .body::<agents::NewAgent>()
        .created::<views::AgentView>(),
        route(Token, "get", "/v1/agents/{id}", "get_agent", "One agent", agents::show).reply::<views::AgentView>(),
        route(
            Token,
            "patch",
            "/v1/agents/{id}",
            "update_agent",
            "Change an agent's directory fields (`null` clears team, email, phone, time_zone)",
            agents::update,
        )
        .body::<crate::directory::AgentRecord>()
        .reply::<views::AgentView>(),
        action(
            "post",
            "/v1/agents/{id}/sign_in",
            "sign_in",
            "Sign in: online, with the default presence",
            Agent,
            |agent, _: Nothing| Input::SignIn { agent },
        ),
        action("post", "/v1/agents/{id}/sign_out", "sign_out", "Sign out", Agent, |agent, _: Nothing| Input::SignOut {
            agent,
        }),
        action(
            "put",
            "/v1/agents/{id}/presence",
            "set_presence",
            "Set the presence (`{\"presence\": \"training\"}`)",
            Agent,
            |agent, b: PresenceBody| Input::SetPresence { agent, presence: b.presence },
        ),
        action(
            "put",
            "/v1/agents/{id}/status",
            "set_status",
            "Set the status: dnd, ready or callcenter",
            Agent,
            |agent, b: StatusBody| Input::SetStatus { agent, status: b.status },
        ),
        action(
            "post",
            "/v1/agents/{id}/pause",
            "pause",
            "Pause with a cause (`{\"cause\": \"lunch\"}`)",
            Agent,
            |agent, b: PauseBody| Input::Pause { agent, cause: b.cause },
        ),
        action("post", "/v1/agents/{id}/resume", "resume", "End a pause", Agent, |agent, _: Nothing| Input::Resume {
            agent,
        }),
        action(
            "post",
            "/v1/agents/{id}/work_day/start",
            "start_work_day",
            "Start the work day",
            Agent,
            |agent, _: Nothing| Input::StartWorkDay { agent },
        ),
        action(
            "post",
            "/v1/agents/{id}/work_day/end",
            "end_work_day",
            "End the work day",
            Agent,
            |agent, _: Nothing| Input::EndWorkDay { agent },
        ),
        action(
            "put",
            "/v1/agents/{id}/vacations",
            "set_vacations",
            "Replace the vacation periods (`[{from, to}]`, RFC 3339)",
            Agent,
            |agent, b: VacationsBody| Input::SetVacations {
                agent,
                periods: b.periods.into_iter().map(|p| (p.from, p.to)).collect(),
            },
        ),
        action(
            "put",
            "/v1/agents/{id}/employment",
            "set_employment",
            "Set dismissal (`{\"dismissed\": true}`)",
            Agent,
            |agent, b: EmploymentBody| Input::SetDismissed { agent, dismissed: b.dismissed },
        ),
        action(
            "post",
            "/v1/conversations/{id}/events",
            "raise_event",
            "Raise a custom event for standby rules (`{\"event\": \"vip\"}` is `custom:vip`)",
            Conversation,
            |conversation, b: standby::EventBody| Input::Raise { conversation, event: b.event },
        ),
        route(
            Token,
            "get",
            "/v1/notifications",
            "list_notifications",
            "The notification log, newest first (`?status=&recipient=&conversation=&limit=`)",
            standby::list,
        )
        .query::<standby::ListQuery>()
        .reply::<standby::NotificationList>(),
        route(
            Token,
            "get",
            "/v1/notifications/{id}",
            "get_notification",
            "One notification with every delivery attempt",
            standby::show,
        )
        .reply::<standby::NotificationDetail>(),
        route(
            Token,
            "post",
            "/v1/notifications/{id}/retry",
            "retry_notification",
            "Put a dead notification back in line",
            standby::retry,
        )
        .reply::<standby::Retried>(),
        route(
            Token,
            "get",
            "/v1/templates/{id}/preview",
            "preview_template",
            "Render a template (`?kind=clearing&conversation=&recipient=`; sample data without a conversation)",
            standby::preview,
        )
        .query::<standby::PreviewQuery>()
        .reply::<crate::template::Rendered>(),
        route(
            Token,
            "get",
            "/v1/schedules",
            "list_schedules",
            "Every schedule with who is on duty now, by which layer, and until when (the next handoff)",
            standby::schedules,
        )
        .reply::<standby::ScheduleList>(),
        route(
            Token,
            "get",
            "/v1/schedules/{id}/on_duty",
            "on_duty",
            "Who is on duty (`?at=` RFC 3339, now by default)",
            standby::on_duty,
        )
        .query::<standby::AtQuery>()
        .reply::<standby::OnDutyReply>(),
        route(
            Token,
            "get",
            "/v1/where_used/{id}",
            "where_used",
            "The queues and standby rules that use a template, standby rule or schedule",
            standby::where_used,
        )
        .reply::<standby::WhereUsed>(),
        action(
            "post",
            "/v1/conversations/{id}/workflow",
            "start_workflow",
            "Set the conversation on a workflow (`{\"workflow\": \"callback\"}`)",
            Conversation,
            |conversation, b: workflows::StartBody| Input::StartWorkflow { conversation, workflow: b.workflow },
        ),
        route(Token, "get", "/v1/workflows", "list_workflows", "Workflows with their numbered stages", workflows::list)
            .reply::<workflows::WorkflowList>(),
        route(
            Token,
            "get",
            "/v1/tasks",
            "list_tasks",
            "Open tasks, oldest first, and instances flagged for a person (`?conversation=&workflow=`)",
            workflows::tasks,
        )
        .query::<workflows::TaskQuery>()
        .reply::<workflows::TaskList>(),
        action(
            "post",
            "/v1/tasks/{id}/push",
            "push_task_button",
            "Push a button of an open task (`{\"button\": \"done\", \"by\": \"olga\"}`)",
            Task,
            // The id was checked to be an open task's number before this runs.
            |id, b: workflows::PushBody| Input::PushButton {
                task: id.parse().unwrap_or_default(),
                button: b.button,
                by: b.by,
            },
        ),
        route(
            Token,
            "get",
            "/v1/workflow_instances",
            "list_workflow_instances",
            "Workflow instances (`?status=running|flagged|finished&conversation=&workflow=`)",
            workflows::instances,
        )
        .query::<workflows::InstanceQuery>()
        .reply::<workflows::InstanceList>(),
        route(
            Token,
            "get",
            "/v1/workflow_instances/{id}",
            "get_workflow_instance",
            "One instance with its history",
            workflows::instance,
        )
        .reply::<crate::instance::Instance>(),
        action(
            "post",
            "/v1/workflow_instances/{id}/resolve",
            "resolve_workflow_instance",
            "Resolve a flagged instance: go on at `{\"event\": \"start\"}`, or finish it with `{}`",
            Instance,
            |id, b: workflows::ResolveBody| Input::ResolveWorkflow {
                instance: id.parse().unwrap_or_default(),
                event: b.event,
            },
        ),
        route(
            Token,
            "get",
            "/v1/queues",
            "list_queues",
            "Queues with waiting conversations and available agents",
            queues::list,
        )
        .reply::<queues::QueueList>(),
        route(
            Token,
            "get",
            "/v1/presences",
            "list_presences",
            "Presences agents can show, with their text and base",
            catalog::presences,
        )
        .reply::<catalog::PresenceList>(),
        route(
            Token,
            "get",
            "/v1/pause_causes",
            "list_pause_causes",
            "Causes an agent can give for a pause",
            catalog::pause_causes,
        )
        .reply::<catalog::PauseCauseList>(),
        route(Token, "get", "/v1/teams", "list_teams", "Teams with their timings and capacity", catalog::teams)
            .reply::<catalog::TeamList>(),
        route(Token, "get", "/v1/queues/{id}", "get_queue", "One queue", queues::show).reply::<views::QueueView>(),
        route(Token, "get", "/v1/timers", "list_timers", "Pending timers in due order", queues::timers)
            .query::<queues::TimerQuery>()
            .reply::<queues::TimerList>(),
        route(
            Token,
            "get",
            "/v1/scripts",
            "get_scripts",
            "The loaded generation of scripts and the last reload error",
            scripts::status,
        )
        .reply::<crate::engine::ScriptStatus>(),
        route(
            Token,
            "post",
            "/v1/scripts/reload",
            "reload_scripts",
            "Reload the scripts folder now (all-units token)",
            scripts::reload,
        )
        .reply::<scripts::Reloaded>(),
        route(Public, "get", "/v1/openapi.json", "openapi", "This document", openapi)
            .reply::<serde_json::Map<String, Value>>(),
        route(
            Stream,
            "get",
            "/v1/events",
            "events",
            "Server-sent events: offers and state changes (`?agent=` / `?queue=` filter)",
            events::stream,
        )
        .query::<events::Filter>()
        .text(),
        route(
            Token,
            "get",
            "/v1/cluster",
            "cluster",
            "The nodes sharing a PostgreSQL database, its owner, epoch and lease",
            cluster::view,
        )
        .reply::<crate::store::ClusterView>(),
        route(Open, "get", "/healthz", "healthz", "200 while the engine answers", ops::healthz).text(),
        route(Open, "get", "/metrics", "metrics", "Prometheus metrics", ops::metrics).text(),
    ]
}

/// Every route the router serves, as documented.
pub fn route_docs() -> Vec<RouteDoc> {
    routes().into_iter().map(|r| r.doc).collect()
}

/// What an API serves: one engine (an `Arc<Handle>`), or one per partition of the units (an
/// `Arc<Partitioned>`: each request goes to the partitions it concerns).
pub trait Served {
    fn engines(self) -> Arc<Partitioned>;
}

impl Served for Arc<Handle> {
    fn engines(self) -> Arc<Partitioned> {
        Arc::new(Partitioned::single(self))
    }
}

impl Served for Arc<Partitioned> {
    fn engines(self) -> Arc<Partitioned> {
        self
    }
}

/// The whole server as `rota serve` runs it: the API ([`api_router`]), the operational routes
/// ([`ops_router`]), the console at `/` ([`console_router`]) and a JSON 404 for everything else. Call [`Closer::close`] when shutting
/// down, or open event streams keep their connections alive.
pub fn router(served: impl Served, config: &ApiConfig) -> (Router, Closer) {
    let engines = served.engines();
    let ops = ops_router(engines.clone());
    let (api, closer) = api_router(engines, config);
    let app = api.merge(ops).merge(console_router()).fallback(not_found).layer(middleware::from_fn(error::problems));
    (app.layer(middleware::from_fn(log::requests)), closer)
}

/// The `/v1` API over a running engine, to mount in an existing axum app: it has no fallback
/// (the host's own 404 stays), so it can be merged or nested, and it authenticates by
/// [`ApiConfig::auth`]: rota's bearer tokens, or the host's own middleware.
pub fn api_router(served: impl Served, config: &ApiConfig) -> (Router, Closer) {
    let (closer, closing) = watch::channel(false);
    let api = Api { engines: served.engines(), closing };
    let (mut timed, mut streams, mut public) = (Router::new(), Router::new(), Router::new());
    for r in routes() {
        let group = match r.access {
            Access::Token => &mut timed,
            Access::Stream => &mut streams,
            Access::Public => &mut public,
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
    let protected = protected.merge(public.layer(middleware::from_fn(error::known_query)));
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
pub fn ops_router(served: impl Served) -> Router {
    // Nothing here streams, so nothing needs closing.
    let (_, closing) = watch::channel(false);
    let mut open = Router::new();
    for r in routes().into_iter().filter(|r| matches!(r.access, Access::Open)) {
        open = open.route(r.doc.path, r.handler);
    }
    open.with_state(Api { engines: served.engines(), closing })
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

/// The OpenAPI 3.1 document of [`route_docs`]: every operation with the schemas of its query,
/// body, reply and errors, made from the Rust types the handlers read and write.
pub fn openapi_document() -> Value {
    openapi::document(docs())
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
