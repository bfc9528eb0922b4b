//! What a node that does not own its database answers while it stands by: every request,
//! `/healthz` included, is 503 with `Retry-After` and a problem naming the node that owns the
//! database and where it listens, so a load balancer's health check picks the owner and a
//! client learns where to go. (Forwarding requests to the owner is not built.)

use std::sync::{Arc, RwLock};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::error::ApiError;

/// The owner as a standby last saw it: its node name and the address it advertises.
pub type Owner = Arc<RwLock<Option<(String, Option<String>)>>>;

/// The router of a node standing by; `retry_after` is how soon it may own the database.
pub fn standby_router(owner: Owner, retry_after: std::time::Duration) -> Router {
    let seconds = retry_after.as_secs().max(1).to_string();
    Router::new().fallback(move || {
        let (owner, seconds) = (owner.clone(), seconds.clone());
        async move {
            let said = owner.read().unwrap_or_else(|e| e.into_inner()).clone();
            let message = match said {
                Some((node, Some(address))) => {
                    format!("this node is standing by; node {node} owns the database and listens at {address}")
                }
                Some((node, None)) => format!("this node is standing by; node {node} owns the database"),
                None => "this node is standing by for the database".to_string(),
            };
            let problem: Response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "standby", message).into_response();
            ([(header::RETRY_AFTER, seconds)], problem).into_response()
        }
    })
}
