//! The open routes: `/healthz` and `/metrics` (Prometheus text format).

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Api;
use crate::engine::Histogram;

/// 200 while the engine answers, 503 once it has stopped.
pub(super) async fn healthz(State(api): State<Api>) -> Response {
    match api.handle.read(|e| e.generation()).await {
        Ok(generation) => format!("ok (scripts generation {generation})\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

pub(super) async fn metrics(State(api): State<Api>) -> Response {
    let text = api
        .handle
        .read(|e| {
            let m = e.metrics();
            let mut out = String::new();
            let mut counter = |name: &str, help: &str, value: u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
            };
            counter("rota_inputs_total", "Inputs handled (accepted or refused).", m.inputs);
            counter("rota_timers_fired_total", "Timers that fell due and fired.", m.timers_fired);
            counter("rota_decisions_total", "Policy decisions taken.", m.decisions);
            counter("rota_script_errors_total", "Policy calls that failed (error, runaway, bad decision).", m.policy_errors);
            counter(
                "rota_notifications_undeliverable_total",
                "Notifications that could not be made (no address, a template error); dead at once.",
                m.undeliverable,
            );
            counter("rota_snapshots_total", "Snapshots of the engine's state taken.", m.snapshots);
            counter(
                "rota_snapshot_failures_total",
                "Snapshots that could not be taken or written (the journal keeps everything).",
                m.snapshot_failures,
            );
            let _ = writeln!(
                out,
                "# HELP rota_snapshot_pause_max_seconds The longest the engine loop paused to take a snapshot.\n\
                 # TYPE rota_snapshot_pause_max_seconds gauge\nrota_snapshot_pause_max_seconds {}",
                m.snapshot_pause_max_ns as f64 / 1e9
            );
            let _ = writeln!(out, "# HELP rota_decision_seconds Time of one policy decision.");
            let _ = writeln!(out, "# TYPE rota_decision_seconds histogram");
            let mut cumulative = 0;
            for (i, count) in m.latency.counts.iter().enumerate() {
                cumulative += count;
                let le = Histogram::BOUNDS_NS.get(i).map_or("+Inf".to_string(), |&ns| format!("{}", ns as f64 / 1e9));
                let _ = writeln!(out, "rota_decision_seconds_bucket{{le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "rota_decision_seconds_sum {}", m.latency.sum_ns as f64 / 1e9);
            let _ = writeln!(out, "rota_decision_seconds_count {cumulative}");
            let _ = writeln!(out, "# HELP rota_queue_waiting Conversations waiting in a queue.\n# TYPE rota_queue_waiting gauge");
            for q in e.rules().queues.iter().filter(|q| !q.retired) {
                let n = e.waiting(&q.id).map_or(0, |w| w.len());
                let _ = writeln!(out, "rota_queue_waiting{{queue=\"{}\",unit=\"{}\"}} {n}", q.id, q.unit);
            }
            let failing: Vec<_> = e
                .rules()
                .queues
                .iter()
                .filter(|q| !q.retired)
                .filter_map(|q| Some((q, e.failing_queue(&q.id)?)))
                .collect();
            let _ = writeln!(out, "# HELP rota_queue_failing_decisions Decisions of a queue that failed in a row.\n# TYPE rota_queue_failing_decisions gauge");
            for (q, (n, _)) in &failing {
                let _ = writeln!(out, "rota_queue_failing_decisions{{queue=\"{}\",unit=\"{}\"}} {n}", q.id, q.unit);
            }
            let _ = writeln!(out, "# HELP rota_queue_retry_backoff_seconds How long the queue's next failed decision waits before it is retried.\n# TYPE rota_queue_retry_backoff_seconds gauge");
            for (q, (_, delay)) in &failing {
                let seconds = delay.as_secs_f64();
                let _ = writeln!(out, "rota_queue_retry_backoff_seconds{{queue=\"{}\",unit=\"{}\"}} {seconds}", q.id, q.unit);
            }
            let _ = writeln!(out, "# HELP rota_timers_pending Timers waiting to fire.\n# TYPE rota_timers_pending gauge");
            let _ = writeln!(out, "rota_timers_pending {}", e.pending_timers());
            let _ = writeln!(out, "# HELP rota_scripts_generation The loaded generation of scripts.\n# TYPE rota_scripts_generation gauge");
            let _ = writeln!(out, "rota_scripts_generation {}", e.generation());
            let failed = e.reload_error().is_some() as u8;
            let _ = writeln!(out, "# HELP rota_scripts_reload_failed 1 when the last reload was rejected.\n# TYPE rota_scripts_reload_failed gauge");
            let _ = writeln!(out, "rota_scripts_reload_failed {failed}");
            out
        })
        .await;
    let text = text.map(|mut text| {
        let _ = writeln!(
            text,
            "# HELP rota_outbox_backlog Messages waiting for delivery, per channel.\n# TYPE rota_outbox_backlog gauge"
        );
        for (channel, n) in api.handle.outbox_backlog() {
            let _ = writeln!(text, "rota_outbox_backlog{{channel=\"{channel}\"}} {n}");
        }
        let counts = api.handle.notification_log().and_then(|log| log.lock().unwrap_or_else(|e| e.into_inner()).counts().ok());
        if let Some(counts) = counts {
            let _ = writeln!(text, "# HELP rota_notifications Standby notifications by delivery status.\n# TYPE rota_notifications gauge");
            for (status, n) in &counts {
                if status != "rate_limited" {
                    let _ = writeln!(text, "rota_notifications{{status=\"{status}\"}} {n}");
                }
            }
            let limited = counts.iter().find(|(s, _)| s == "rate_limited").map_or(0, |(_, n)| *n);
            let _ = writeln!(text, "# HELP rota_notifications_rate_limited_total Sends put off by a per-recipient rate limit.\n# TYPE rota_notifications_rate_limited_total counter");
            let _ = writeln!(text, "rota_notifications_rate_limited_total {limited}");
        }
        if let Some(Ok(view)) = api.handle.cluster() {
            cluster(&mut text, &view);
        }
        text
    });
    match text {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// Who owns each partition and how fresh its lease is, and the nodes sharing the database.
fn cluster(out: &mut String, view: &crate::store::ClusterView) {
    let rows: Vec<LeaseRow> = view
        .partitions
        .iter()
        .map(|p| (p.id.as_str(), p.owner == view.node, Some((p.owner.as_str(), p.epoch))))
        .collect();
    leases(out, &rows);
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let labels =
        |p: &crate::store::ClusterPartition| format!("partition=\"{}\",owner=\"{}\"", p.id, p.owner.escape_default());
    gauge(
        "rota_cluster_lease_expires_in_seconds",
        "How long each partition's lease lasts unless renewed (negative: expired that long ago).",
        view.partitions.iter().map(|p| (labels(p), p.lease_expires_in_ms as f64 / 1e3)).collect(),
    );
    gauge(
        "rota_cluster_lease_age_seconds",
        "How long ago each partition's lease was last renewed or taken.",
        view.partitions.iter().map(|p| (labels(p), p.lease_age_ms as f64 / 1e3)).collect(),
    );
    gauge(
        "rota_cluster_node_seen_seconds",
        "How long ago each node sharing the database last renewed its lease or tried to take one.",
        view.nodes
            .iter()
            .map(|n| (format!("node=\"{}\"", n.node.escape_default()), n.seen_ms_ago as f64 / 1e3))
            .collect(),
    );
}

/// A partition's lease as `/metrics` shows it: its id, whether this node holds it, and its
/// owner and epoch when known (as a standby last saw them, on a standby).
pub(super) type LeaseRow<'a> = (&'a str, bool, Option<(&'a str, i64)>);

/// Whether this node holds each partition's lease, and who does under which epoch.
pub(super) fn leases(out: &mut String, rows: &[LeaseRow]) {
    let _ = writeln!(
        out,
        "# HELP rota_lease_held 1 on the node owning the partition, 0 on a node standing by.\n\
         # TYPE rota_lease_held gauge"
    );
    for (partition, held, _) in rows {
        let _ = writeln!(out, "rota_lease_held{{partition=\"{partition}\"}} {}", u8::from(*held));
    }
    let _ = writeln!(
        out,
        "# HELP rota_cluster_lease_epoch The epoch of each partition's lease, labelled with its owner.\n\
         # TYPE rota_cluster_lease_epoch gauge"
    );
    for (partition, _, owner) in rows {
        if let Some((owner, epoch)) = owner {
            let owner = owner.escape_default();
            let _ = writeln!(out, "rota_cluster_lease_epoch{{partition=\"{partition}\",owner=\"{owner}\"}} {epoch}");
        }
    }
}
