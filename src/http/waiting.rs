//! What a node that does not own its database serves while it stands by: every API request
//! (the event stream included) is forwarded to the node that owns the database, as it came,
//! and the owner's answer is passed back as it goes; `/healthz` answers 503 and `/metrics`
//! this node's own figures, so a load balancer's health check and a scrape each see the node
//! they asked. Without an owner to forward to, a request gets 503 with `Retry-After` naming
//! what is known of it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::error::ApiError;
use crate::outbound::Relay;

/// The owner as a standby last saw it (the last refused attempt to take the lease).
pub type Owner = Arc<RwLock<Option<Seen>>>;

/// A node owning the database, as a standby saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub node: String,
    /// Where it listens: `[store] advertise` of its configuration.
    pub address: Option<String>,
    /// The epoch of its lease.
    pub epoch: i64,
}

/// How a standby answers.
pub struct Standby {
    /// This node's name: forwarded requests and their answers carry it in `Via`.
    pub node: String,
    /// How soon this node may own the database (its lease's length).
    pub retry_after: Duration,
    /// The largest request body passed on, as the API takes.
    pub body_limit: usize,
    /// How long the API may take to answer, so a forwarded request gives up later than that.
    pub timeout: Duration,
}

/// The router of a node standing by.
pub fn standby_router(owner: Owner, standby: Standby) -> Router {
    // An owner that accepts the connection but says nothing (paused) is given up on after the
    // API's own time limit, or the event stream's keep-alive interval, with room to spare.
    let quiet = standby.timeout.max(Duration::from_secs(15)) + Duration::from_secs(5);
    let relay = Relay::new(Duration::from_secs(2), quiet);
    let state = Arc::new((owner, standby, relay));
    Router::new().fallback(move |req: Request| {
        let state = state.clone();
        async move {
            let (owner, standby, relay) = &*state;
            let seen = owner.read().unwrap_or_else(|e| e.into_inner()).clone();
            match req.uri().path() {
                "/healthz" => unavailable(standby, &seen, None),
                "/metrics" => metrics(&seen),
                _ => match relay {
                    Ok(relay) => forward(req, relay, standby, seen).await,
                    Err(e) => unavailable(standby, &seen, Some(&format!("no HTTP client: {e}"))),
                },
            }
        }
    })
}

/// A 503 saying this node stands by, who owns the database and, when a forward failed, why.
fn unavailable(standby: &Standby, seen: &Option<Seen>, failed: Option<&str>) -> Response {
    let mut message = match seen {
        Some(Seen { node, address: Some(address), .. }) => {
            format!("this node is standing by; node {node} owns the database and listens at {address}")
        }
        Some(Seen { node, address: None, .. }) => format!("this node is standing by; node {node} owns the database"),
        None => "this node is standing by for the database".to_string(),
    };
    if let Some(why) = failed {
        message.push_str("; forwarding failed: ");
        message.push_str(why);
    }
    let problem = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "standby", message).into_response();
    let seconds = standby.retry_after.as_secs().max(1).to_string();
    ([(header::RETRY_AFTER, seconds)], problem).into_response()
}

/// This node's figures: it holds no lease, and the owner it last saw.
fn metrics(seen: &Option<Seen>) -> Response {
    let mut text = String::new();
    let owner = seen.as_ref().map(|s| (s.node.as_str(), s.epoch));
    super::ops::leases(&mut text, &[("all", false, owner)]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Headers that belong to one hop, never passed on (RFC 9110 §7.6.1), `Host`, which the relay
/// sets for the owner, and `Content-Length`, which follows the body as it is sent on.
const HOP_BY_HOP: [header::HeaderName; 10] = [
    header::CONNECTION,
    header::HeaderName::from_static("keep-alive"),
    header::HOST,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

fn passed_on(headers: &HeaderMap, via: &HeaderValue) -> HeaderMap {
    let mut out = headers.clone();
    for name in &HOP_BY_HOP {
        out.remove(name);
    }
    out.append(header::VIA, via.clone());
    out
}

async fn forward(req: Request, relay: &Relay, standby: &Standby, seen: Option<Seen>) -> Response {
    let Some(Seen { node, address: Some(address), .. }) = &seen else {
        return unavailable(standby, &seen, None);
    };
    let hop = format!("1.1 rota-{}", standby.node);
    // A request another standby forwarded is not forwarded again: two standbys that each think
    // the other owns the database (a takeover between their looks) would pass it round forever.
    let forwarded_before =
        req.headers().get_all(header::VIA).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("rota-")));
    let Ok(via) = HeaderValue::from_str(&hop) else {
        return unavailable(standby, &seen, Some("this node's name cannot be sent in a header"));
    };
    if forwarded_before {
        return unavailable(standby, &seen, Some("the request was forwarded to this node by another one"));
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, standby.body_limit).await {
        Ok(body) => body,
        Err(_) => {
            let message = format!("the request body is larger than {} bytes", standby.body_limit);
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "bad_body", message).into_response();
        }
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{target}", address.trim_end_matches('/'));
    let answer = relay.send(parts.method, &url, passed_on(&parts.headers, &via), body).await;
    match answer {
        Ok(answer) => {
            let mut res = Response::new(Body::from_stream(answer.body));
            *res.status_mut() = answer.status;
            *res.headers_mut() = passed_on(&answer.headers, &via);
            res
        }
        Err(why) => unavailable(standby, &seen, Some(&format!("node {node} at {address}: {why}"))),
    }
}
