//! `GET /v1/cluster`: the nodes sharing a PostgreSQL database, which one owns it, under
//! which epoch, and how old its lease is.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::ApiError;
use super::Api;
use crate::store::ClusterView;

/// 404 for a store one process uses (a SQLite file, or none).
pub(super) async fn view(State(api): State<Api>) -> Result<Json<ClusterView>, ApiError> {
    match api.handle.cluster() {
        Some(Ok(view)) => Ok(Json(view)),
        Some(Err(e)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_clustered",
            "this server's store is a SQLite file, which one process uses: there is no cluster",
        )),
    }
}
