//! Everything `rota serve` runs, as a library: the engine on its SQLite store, the webhook and
//! notification deliverers, the scripts watcher with hot reload, and the HTTP API, set up from
//! one [`Config`] inside an existing tokio program. `rota serve` is a thin command over it.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::error::EngineError;
use crate::http::ApiConfig;
use crate::partition::Partition;
use crate::runtime::{Builder, Handle, Partitioned};
use crate::store::StoreError;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A delivery channel's settings do not work (an SMTP relay without a host, say).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The engine builder given to [`Server::start`] has no store to deliver from.
    #[error("the builder has no store (see Server::builder)")]
    NoStore,
    #[error("cannot start the {what}: {source}")]
    Thread { what: &'static str, source: std::io::Error },
    #[error("cannot watch {dir}: {source}")]
    Watch { dir: String, source: Box<dyn std::error::Error + Send + Sync> },
}

/// A running server: the engine (one per partition of the units), its deliverers and its
/// watcher. Serve `http::router(server.engines().clone(), &server.api_config())` (the whole
/// API, as `rota serve` does) or mount [`crate::http::api_router`] in an axum app; then
/// [`Server::stop`].
pub struct Server {
    engines: Arc<Partitioned>,
    config: Config,
    stop_delivery: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Dropping it stops watching.
    _watch: crate::watch::Watch,
    /// What the channels send through (`email: smtp relay …`), for a start-up banner.
    pub channels: Vec<String>,
}

impl Server {
    /// The engine builder `config` asks for: its store, limits, retention and webhook routes.
    /// Add Rust policies or host functions to it, then hand it to [`Server::start`]. With
    /// partitions, see [`Server::partition_builder`].
    pub fn builder(config: &Config) -> Result<Builder, ServerError> {
        Server::partition_builder(config, &Partition::default())
    }

    /// [`Server::builder`] for one partition of `config`'s: its store is that partition's (its
    /// journal stream, under its own lease). Take them in index order (see
    /// [`Server::start_partitions`]).
    pub fn partition_builder(config: &Config, partition: &Partition) -> Result<Builder, ServerError> {
        let store = crate::store::open_partition(&config.db, &config.lease(), partition)?;
        let mut builder = Builder::new(&config.scripts)
            .limits(config.limits())
            .retain_ended(config.limits.keep_ended)
            .trace_skips(config.limits.trace_skips)
            .snapshots(config.store.policy())
            .keep_events(crate::runtime::KEEP_EVENTS)
            .store(store);
        if config.limits.keep_ended_days > 0 {
            let days = i64::from(config.limits.keep_ended_days);
            builder = builder.retain_ended_for(crate::time::Duration::from_secs(days * 86_400));
        }
        for hook in &config.webhooks {
            builder = builder.route(hook.route());
        }
        Ok(builder)
    }

    /// Starts the engine from `builder` (see [`Server::builder`]) and, around it, the webhook
    /// and notification deliverers and the watcher that reloads the scripts when they change.
    /// Each reload's outcome goes to `reloaded`.
    pub fn start(
        config: &Config,
        builder: Builder,
        reloaded: mpsc::UnboundedSender<Result<u64, EngineError>>,
    ) -> Result<Server, ServerError> {
        Server::start_partitions(config, vec![builder], reloaded)
    }

    /// [`Server::start`] with a builder per partition of `config`'s, in index order (from
    /// [`Server::partition_builder`]): an engine for each, with its own deliverers, and one
    /// watcher reloading them all as one.
    pub fn start_partitions(
        config: &Config,
        builders: Vec<Builder>,
        reloaded: mpsc::UnboundedSender<Result<u64, EngineError>>,
    ) -> Result<Server, ServerError> {
        let partitioning = config.partitioning()?;
        if builders.len() != partitioning.count() as usize {
            let message = format!("{} partitions need a builder each, not {}", partitioning.count(), builders.len());
            return Err(crate::config::ConfigError::Invalid(message).into());
        }
        let mut builders = builders.into_iter();
        let engines =
            Arc::new(Partitioned::start(partitioning, |_| builders.next().expect("a builder per partition"))?);
        let (stop_delivery, stopped) = watch::channel(false);
        let thread = |what| move |source| ServerError::Thread { what, source };
        let mut threads = Vec::new();
        let mut channels = Vec::new();
        for handle in engines.handles() {
            let deliveries = handle.take_deliveries().ok_or_else(|| ServerError::NoStore)?;
            let webhooks = crate::webhook::spawn(deliveries, config.webhooks.clone(), config.retry(), stopped.clone())
                .map_err(thread("webhook deliverer"))?;
            let senders = config.senders()?;
            channels = senders.describe();
            let notifications = handle.take_notifications().ok_or_else(|| ServerError::NoStore)?;
            let (notify, engine) = (config.notify.clone(), handle.clone());
            let notifier = crate::delivery::spawn(notifications, senders, notify, engine, stopped.clone())
                .map_err(thread("notification deliverer"))?;
            threads.extend([webhooks, notifier]);
        }
        let debounce = std::time::Duration::from_millis(config.http.reload_debounce_ms);
        let watching = crate::watch::watch(&config.scripts, engines.clone(), debounce, reloaded)
            .map_err(|e| ServerError::Watch { dir: config.scripts.display().to_string(), source: Box::new(e) })?;
        Ok(Server { engines, config: config.clone(), stop_delivery, threads, _watch: watching, channels })
    }

    /// The engine, or the first partition's (see [`Server::engines`]).
    pub fn handle(&self) -> &Arc<Handle> {
        &self.engines.handles()[0]
    }

    /// Every partition's engine.
    pub fn engines(&self) -> &Arc<Partitioned> {
        &self.engines
    }

    /// The API settings of the config (its tokens, or the development token without any),
    /// for [`crate::http::router`] (the whole server) or [`crate::http::api_router`].
    pub fn api_config(&self) -> ApiConfig {
        self.config.api()
    }

    /// Stops the engine after the inputs it already has (committed), then the deliverers;
    /// undelivered messages stay in the outbox for the next start. An error says why the
    /// engine had stopped on its own before.
    pub async fn stop(self) -> Result<(), EngineError> {
        let closed = self.engines.close().await;
        let _ = self.stop_delivery.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
        closed
    }
}
