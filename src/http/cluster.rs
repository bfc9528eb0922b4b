//! `GET /v1/cluster`: the nodes sharing a PostgreSQL database, which one owns it, under
//! which epoch, and how old its lease is.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::ApiError;
use super::Api;
use crate::store::ClusterView;

/// Every partition's lease, and the nodes any partition's store has seen; 404 for a store
/// one process uses (a SQLite file, or none).
pub(super) async fn view(State(api): State<Api>) -> Result<Json<ClusterView>, ApiError> {
    let mut merged: Option<ClusterView> = None;
    for handle in api.engines.handles() {
        let view = match handle.cluster() {
            Some(Ok(view)) => view,
            Some(Err(e)) => {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string()))
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_clustered",
                    "this server's store is a SQLite file, which one process uses: there is no cluster",
                ))
            }
        };
        merged = Some(match merged {
            None => view,
            Some(mut all) => {
                for node in view.nodes {
                    match all.nodes.iter_mut().find(|n| n.node == node.node) {
                        Some(seen) => {
                            seen.owner |= node.owner;
                            seen.seen_ms_ago = seen.seen_ms_ago.min(node.seen_ms_ago);
                        }
                        None => all.nodes.push(node),
                    }
                }
                all.partitions.extend(view.partitions);
                all
            }
        });
    }
    let mut view = merged.expect("at least one partition");
    view.nodes.sort_by(|a, b| (!a.owner, &a.node).cmp(&(!b.owner, &b.node)));
    Ok(Json(view))
}
