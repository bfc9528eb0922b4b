//! The console: the page at `/` and its script and style (`console/` in the repository, built
//! into the binary), a small app over the JSON API. Nothing here needs a token: the page asks
//! for one and every call it makes goes through the API's own checks.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

/// `/` and `/console/…`: the console's files.
pub fn console_router() -> Router {
    let file = |content_type: &'static str, body: &'static str| {
        get(move || async move {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
        })
    };
    Router::new()
        .route("/", file("text/html; charset=utf-8", INDEX))
        .route("/console/console.js", file("text/javascript; charset=utf-8", SCRIPT))
        .route("/console/console.css", file("text/css; charset=utf-8", STYLE))
}
