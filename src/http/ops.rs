//! The open routes: `/healthz` and `/metrics` (Prometheus text format).

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Api;
use crate::engine::{Histogram, Metrics};

/// 200 while the engine answers (every partition's), 503 once one has stopped.
pub(super) async fn healthz(State(api): State<Api>) -> Response {
    let generations =
        futures_util::future::try_join_all(api.engines.handles().iter().map(|h| h.read(|e| e.generation())));
    match generations.await {
        Ok(generations) => format!("ok (scripts generation {})\n", generations[0]).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// What one engine gives `/metrics`.
struct Figures {
    metrics: Metrics,
    /// Each queue's id, unit, waiting conversations, and failing decisions in a row with the
    /// backoff of the next, if failing.
    queues: Vec<Queue>,
    timers: usize,
    generation: u64,
    reload_failed: bool,
}

type Queue = (String, String, usize, Option<(u32, crate::time::Duration)>);

fn figures(e: &crate::engine::Engine) -> Figures {
    let mut metrics = e.metrics().clone();
    metrics.latencies = Vec::new();
    let queues = e
        .rules()
        .queues
        .iter()
        .filter(|q| !q.retired)
        .map(|q| (q.id.clone(), q.unit.clone(), e.waiting(&q.id).map_or(0, |w| w.len()), e.failing_queue(&q.id)))
        .collect();
    let (timers, generation, reload_failed) = (e.pending_timers(), e.generation(), e.reload_error().is_some());
    Figures { metrics, queues, timers, generation, reload_failed }
}

/// Every partition's figures together: counters summed, queues side by side.
pub(super) async fn metrics(State(api): State<Api>) -> Response {
    let all = futures_util::future::try_join_all(api.engines.handles().iter().map(|h| h.read(figures))).await;
    let all = match all {
        Ok(all) => all,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    let mut m = Metrics::default();
    for f in &all {
        m.add(&f.metrics);
    }
    let queues: Vec<&Queue> = all.iter().flat_map(|f| &f.queues).collect();
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
    let _ =
        writeln!(out, "# HELP rota_queue_waiting Conversations waiting in a queue.\n# TYPE rota_queue_waiting gauge");
    for (id, unit, waiting, _) in &queues {
        let _ = writeln!(out, "rota_queue_waiting{{queue=\"{id}\",unit=\"{unit}\"}} {waiting}");
    }
    let _ = writeln!(out, "# HELP rota_queue_failing_decisions Decisions of a queue that failed in a row.\n# TYPE rota_queue_failing_decisions gauge");
    for (id, unit, _, failing) in &queues {
        if let Some((n, _)) = failing {
            let _ = writeln!(out, "rota_queue_failing_decisions{{queue=\"{id}\",unit=\"{unit}\"}} {n}");
        }
    }
    let _ = writeln!(out, "# HELP rota_queue_retry_backoff_seconds How long the queue's next failed decision waits before it is retried.\n# TYPE rota_queue_retry_backoff_seconds gauge");
    for (id, unit, _, failing) in &queues {
        if let Some((_, delay)) = failing {
            let seconds = delay.as_secs_f64();
            let _ = writeln!(out, "rota_queue_retry_backoff_seconds{{queue=\"{id}\",unit=\"{unit}\"}} {seconds}");
        }
    }
    let timers: usize = all.iter().map(|f| f.timers).sum();
    let _ = writeln!(out, "# HELP rota_timers_pending Timers waiting to fire.\n# TYPE rota_timers_pending gauge");
    let _ = writeln!(out, "rota_timers_pending {timers}");
    let _ = writeln!(
        out,
        "# HELP rota_scripts_generation The loaded generation of scripts.\n# TYPE rota_scripts_generation gauge"
    );
    let _ = writeln!(out, "rota_scripts_generation {}", all[0].generation);
    let failed = all.iter().any(|f| f.reload_failed) as u8;
    let _ = writeln!(out, "# HELP rota_scripts_reload_failed 1 when the last reload was rejected.\n# TYPE rota_scripts_reload_failed gauge");
    let _ = writeln!(out, "rota_scripts_reload_failed {failed}");
    let _ = writeln!(
        out,
        "# HELP rota_outbox_backlog Messages waiting for delivery, per channel.\n# TYPE rota_outbox_backlog gauge"
    );
    let mut backlog = std::collections::BTreeMap::<String, u64>::new();
    for h in api.engines.handles() {
        for (channel, n) in h.outbox_backlog() {
            *backlog.entry(channel).or_default() += n;
        }
    }
    for (channel, n) in backlog {
        let _ = writeln!(out, "rota_outbox_backlog{{channel=\"{channel}\"}} {n}");
    }
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut logged = false;
    for h in api.engines.handles() {
        let read = h.notification_log().and_then(|log| log.lock().unwrap_or_else(|e| e.into_inner()).counts().ok());
        for (status, n) in read.into_iter().flatten() {
            logged = true;
            *counts.entry(status).or_default() += n;
        }
    }
    if logged {
        let _ = writeln!(
            out,
            "# HELP rota_notifications Standby notifications by delivery status.\n# TYPE rota_notifications gauge"
        );
        for (status, n) in counts.iter().filter(|(s, _)| *s != "rate_limited") {
            let _ = writeln!(out, "rota_notifications{{status=\"{status}\"}} {n}");
        }
        let limited = counts.get("rate_limited").copied().unwrap_or(0);
        let _ = writeln!(out, "# HELP rota_notifications_rate_limited_total Sends put off by a per-recipient rate limit.\n# TYPE rota_notifications_rate_limited_total counter");
        let _ = writeln!(out, "rota_notifications_rate_limited_total {limited}");
    }
    let views: Vec<_> = api.engines.handles().iter().filter_map(|h| h.cluster()?.ok()).collect();
    if !views.is_empty() {
        cluster(&mut out, &views);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Who owns each partition and how fresh its lease is, and the nodes sharing the database
/// (each partition's store's view).
fn cluster(out: &mut String, views: &[crate::store::ClusterView]) {
    let partitions: Vec<(&crate::store::ClusterPartition, &str)> =
        views.iter().flat_map(|v| v.partitions.iter().map(move |p| (p, v.node.as_str()))).collect();
    let rows: Vec<LeaseRow> =
        partitions.iter().map(|(p, me)| (p.id.as_str(), p.owner == *me, Some((p.owner.as_str(), p.epoch)))).collect();
    leases(out, &rows);
    let mut nodes: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for n in views.iter().flat_map(|v| &v.nodes) {
        let seen = nodes.entry(n.node.as_str()).or_insert(n.seen_ms_ago);
        *seen = (*seen).min(n.seen_ms_ago);
    }
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
        partitions.iter().map(|(p, _)| (labels(p), p.lease_expires_in_ms as f64 / 1e3)).collect(),
    );
    gauge(
        "rota_cluster_lease_age_seconds",
        "How long ago each partition's lease was last renewed or taken.",
        partitions.iter().map(|(p, _)| (labels(p), p.lease_age_ms as f64 / 1e3)).collect(),
    );
    gauge(
        "rota_cluster_node_seen_seconds",
        "How long ago each node sharing the database last renewed its lease or tried to take one.",
        nodes.iter().map(|(n, ms)| (format!("node=\"{}\"", n.escape_default()), *ms as f64 / 1e3)).collect(),
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
