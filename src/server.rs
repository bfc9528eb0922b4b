//! Everything `rota serve` runs, as a library: the engine on its SQLite store, the webhook and
//! notification deliverers, the scripts watcher with hot reload, and the HTTP API, set up from
//! one [`Config`] inside an existing tokio program. `rota serve` is a thin command over it.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::error::EngineError;
use crate::http::ApiConfig;
use crate::runtime::{Builder, Handle};
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

/// A running server: the engine, its deliverers and its watcher. Serve
/// `http::router(server.handle().clone(), &server.api_config())` (the whole API, as `rota
/// serve` does) or mount [`crate::http::api_router`] in an axum app; then [`Server::stop`].
pub struct Server {
    handle: Arc<Handle>,
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
    /// Add Rust policies or host functions to it, then hand it to [`Server::start`].
    pub fn builder(config: &Config) -> Result<Builder, ServerError> {
        let mut builder = Builder::new(&config.scripts)
            .limits(config.limits())
            .retain_ended(config.limits.keep_ended)
            .trace_skips(config.limits.trace_skips)
            .snapshots(config.store.policy())
            .keep_events(crate::runtime::KEEP_EVENTS)
            .store(crate::store::open_as(&config.db, &config.lease())?);
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
        let handle = Arc::new(builder.start()?);
        let (stop_delivery, stopped) = watch::channel(false);
        let deliveries = handle.take_deliveries().ok_or_else(|| ServerError::NoStore)?;
        let thread = |what| move |source| ServerError::Thread { what, source };
        let webhooks = crate::webhook::spawn(deliveries, config.webhooks.clone(), config.retry(), stopped.clone())
            .map_err(thread("webhook deliverer"))?;
        let senders = config.senders()?;
        let channels = senders.describe();
        let notifications = handle.take_notifications().ok_or_else(|| ServerError::NoStore)?;
        let notifier = crate::delivery::spawn(notifications, senders, config.notify.clone(), handle.clone(), stopped)
            .map_err(thread("notification deliverer"))?;
        let debounce = std::time::Duration::from_millis(config.http.reload_debounce_ms);
        let watching = crate::watch::watch(&config.scripts, handle.clone(), debounce, reloaded)
            .map_err(|e| ServerError::Watch { dir: config.scripts.display().to_string(), source: Box::new(e) })?;
        Ok(Server {
            handle,
            config: config.clone(),
            stop_delivery,
            threads: vec![webhooks, notifier],
            _watch: watching,
            channels,
        })
    }

    pub fn handle(&self) -> &Arc<Handle> {
        &self.handle
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
        let closed = self.handle.close().await;
        let _ = self.stop_delivery.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
        closed
    }
}
