//! The request log: one `tracing` event per request (target `rota::http`) with its method,
//! route, status, latency and the name of the token that made it.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::auth::Caller;

pub(super) async fn requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // The route as declared (`/v1/agents/{id}`), so a log groups by route, not by id.
    let route = super::routes_at(req.uri().path()).next().map_or("-", |r| r.path);
    let started = Instant::now();
    let response = next.run(req).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let token = response.extensions().get::<Caller>().map_or("-", |c| &c.0);
    if status >= 500 {
        tracing::warn!(target: "rota::http", %method, route, status, latency_ms, token, "request failed");
    } else {
        tracing::info!(target: "rota::http", %method, route, status, latency_ms, token, "request");
    }
    response
}
