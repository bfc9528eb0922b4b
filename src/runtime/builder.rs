//! [`Builder`]: what an engine starts with (scripts, clock, policies, store, routes), and starting it.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::clock::{Clock, SystemClock};
use crate::engine::EngineConfig;
use crate::error::EngineError;
use crate::outbox::{Backlog, EventRoute};
use crate::policy::Policy;
use crate::script::{Limits, Sources};
use crate::store::Store;

use super::commit::{Loop, Outgoing};
use super::handle::{Checker, Command, Deliveries, Handle, Notifications};
use super::recovery::recover;

/// Configures and starts an engine.
///
/// ```no_run
/// # async fn demo() -> Result<(), rota::EngineError> {
/// let rota = rota::runtime::Builder::new("scripts").start()?;
/// rota.submit(rota::Input::SignIn { agent: "olga".into() }).await?;
/// # Ok(()) }
/// ```
pub struct Builder {
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    policies: Vec<Box<dyn Policy>>,
    store: Option<Box<dyn Store>>,
    routes: Vec<EventRoute>,
    on_log: Option<LogSink>,
    /// Scripts given as text rather than read from the folder.
    sources: Option<Sources>,
    snapshots: super::SnapshotPolicy,
    /// Events kept for resuming a stream (0: none).
    keep_events: usize,
}

/// Where the engine's `Log` updates go as they happen, besides the event stream: their level
/// (`debug`, `info`, `warn`, `error`) and text.
pub type LogSink = Box<dyn Fn(&'static str, &str) + Send>;

impl Builder {
    /// An engine on the given scripts folder, on the system clock.
    pub fn new(scripts: impl Into<PathBuf>) -> Self {
        Builder {
            config: EngineConfig::new(scripts),
            clock: Arc::new(SystemClock),
            policies: Vec::new(),
            store: None,
            routes: Vec::new(),
            on_log: None,
            sources: None,
            snapshots: super::SnapshotPolicy::default(),
            keep_events: 0,
        }
    }

    /// An engine on scripts that do not live in a folder (kept in a database, uploaded; see
    /// [`Sources::from_files`]), on the system clock. Reload them with
    /// [`Handle::reload_sources`]; [`Handle::reload`] has no folder to read.
    pub fn from_sources(sources: Sources) -> Self {
        Builder { sources: Some(sources), ..Builder::new(PathBuf::new()) }
    }

    /// Use another clock, such as a [`crate::clock::VirtualClock`] in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// How many ended conversations stay in memory for reading back (10,000 by default).
    pub fn retain_ended(mut self, conversations: usize) -> Self {
        self.config.retain_ended = conversations;
        self
    }

    /// How many skipped candidates a decision's trace names (10 by default; the others are
    /// counted by reason). A queue with `full_traces` names them all.
    pub fn trace_skips(mut self, named: usize) -> Self {
        self.config.trace_skips = named;
        self
    }

    /// How long an ended conversation stays in memory for reading back at most (by default,
    /// as long as [`Builder::retain_ended`]'s count allows).
    pub fn retain_ended_for(mut self, age: crate::time::Duration) -> Self {
        self.config.retain_ended_for = Some(age);
        self
    }

    /// Adds a policy written in Rust; queues name it like any Lua policy (and it wins over
    /// a Lua policy of the same name).
    pub fn policy(mut self, policy: impl Policy + 'static) -> Self {
        self.policies.push(Box::new(policy));
        self
    }

    /// Adds the embedding program's own Lua functions for scripts (see
    /// [`crate::script::HostFunctions`]). Like Rust policies, with a store they must be
    /// deterministic: the journal is replayed through the decisions that called them.
    pub fn functions(mut self, functions: crate::script::HostFunctions) -> Self {
        self.config.functions = functions;
        self
    }

    /// Keeps the engine's state in `store`: it is rebuilt from the store at start, and every
    /// input is durable before it is acknowledged. Rust policies must then be deterministic
    /// (no wall clock, no outside state), because the journal is replayed through them.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// When the engine takes snapshots of its state into the store (see [`super::SnapshotPolicy`];
    /// every 10,000 steps or 10 minutes by default), so a start replays only the journal after
    /// the newest one.
    /// Run one partition of the organization units: only its units' agents, queues and
    /// conversations (see [`crate::partition`] and [`super::Partitioned`], which sets this).
    pub fn partition(mut self, partition: crate::partition::Partition) -> Self {
        self.config.partition = partition;
        self
    }

    pub fn snapshots(mut self, policy: super::SnapshotPolicy) -> Self {
        self.snapshots = policy;
        self
    }

    /// How many of the latest events are kept, numbered, so a client whose stream dropped can
    /// resume it ([`Handle::events`]). None by default: keeping them labels every update as it
    /// is published, which costs the engine loop time even with nobody listening; `rota serve`
    /// keeps [`super::KEEP_EVENTS`].
    pub fn keep_events(mut self, events: usize) -> Self {
        self.keep_events = events;
        self
    }

    /// Hands every `Log` update (scripts' `log.*`, the engine's warnings and errors) to `sink`
    /// on the engine thread as it happens: a server prints them, without the cost of a
    /// subscription to every update.
    pub fn on_log(mut self, sink: impl Fn(&'static str, &str) + Send + 'static) -> Self {
        self.on_log = Some(Box::new(sink));
        self
    }

    /// Sends the events `route` admits to its channel through the store's outbox (needs a store).
    pub fn route(mut self, route: EventRoute) -> Self {
        self.routes.push(route);
        self
    }

    /// Loads the scripts (or replays the store) and starts the engine thread. Fails with every
    /// diagnostic if the scripts do not load, or with the store's error.
    pub fn start(self) -> Result<Handle, EngineError> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (started_tx, started_rx) = mpsc::channel();
        let (updates, _) = broadcast::channel(4096);
        let (stopped_tx, stopped) = watch::channel(None);
        let publish = updates.clone();
        let clock = self.clock.clone();
        let checker = Checker {
            scripts: self.config.scripts.clone(),
            limits: self.config.limits.clone(),
            host: crate::engine::host(&self.policies, &self.config),
        };
        let Builder {
            config,
            clock: engine_clock,
            policies,
            mut store,
            routes,
            on_log,
            sources,
            snapshots,
            keep_events,
        } = self;
        let history = (keep_events > 0).then(|| super::EventHistory::new(boot(&*engine_clock), keep_events));
        if !routes.is_empty() && store.is_none() {
            return Err(EngineError::Unsupported("an outbox route needs a store to keep its messages in".into()));
        }
        let backlog = Backlog::default();
        let (wake, woken) = watch::channel(0u64);
        let (notify_wake, notify_woken) = watch::channel(0u64);
        let notify_wake = Arc::new(notify_wake);
        let (deliveries, notifications) = match &store {
            Some(store) => {
                let mut outbox = store.outbox()?;
                backlog.set(outbox.backlog()?);
                let notifications = Notifications { log: store.notifications()?, wake: notify_woken };
                (Some(Deliveries { outbox, wake: woken, backlog: backlog.clone() }), Some(notifications))
            }
            None => (None, None),
        };
        let log = store.as_ref().map(|s| s.notifications()).transpose()?.map(|l| Arc::new(std::sync::Mutex::new(l)));
        let cluster =
            store.as_ref().map(|s| s.cluster()).transpose()?.flatten().map(|c| Arc::new(std::sync::Mutex::new(c)));
        let snapshots = match &store {
            Some(store) => Some(super::snapshots::Snapshotter::start(snapshots, store.snapshots()?)?),
            None => None,
        };
        let outbox = Outgoing {
            routes,
            messages: Vec::new(),
            notifications: Vec::new(),
            backlog: backlog.clone(),
            wake,
            notify_wake: notify_wake.clone(),
        };
        let loop_history = history.clone();
        let thread = std::thread::Builder::new()
            .name("rota-engine".into())
            .spawn(move || match recover(config, sources, engine_clock.clone(), policies, store.as_deref_mut()) {
                Ok((engine, journal)) => {
                    let _ = started_tx.send(Ok(()));
                    let run = Loop {
                        engine,
                        clock: engine_clock,
                        store,
                        updates: publish,
                        journal,
                        outbox,
                        on_log,
                        done: Vec::new(),
                        snapshots,
                        history: loop_history,
                    };
                    let end = run.run(rx).map_err(Arc::new);
                    let _ = stopped_tx.send(Some(end));
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                }
            })
            .map_err(|e| EngineError::Unsupported(format!("cannot start the engine thread: {e}")))?;
        started_rx.recv().unwrap_or_else(|_| {
            Err(EngineError::Unsupported("the engine thread ended before it started (it panicked; see stderr)".into()))
        })?;
        let deliveries = std::sync::Mutex::new(deliveries);
        let notifications = std::sync::Mutex::new(notifications);
        Ok(Handle {
            tx,
            checker: Arc::new(checker),
            updates,
            clock,
            stopped,
            deliveries,
            notifications,
            log,
            cluster,
            notify_wake,
            backlog,
            history,
            thread: Some(thread),
        })
    }
}

/// A number for this start of an engine, different from other starts: event ids carry it, so
/// one from before a restart is not taken for one of this run. The clock's reading (virtual in
/// tests) with the process and a count of starts in it.
fn boot(clock: &dyn Clock) -> u64 {
    static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (clock.now().0 as u64).wrapping_mul(1_000_003) ^ (u64::from(std::process::id()) << 20) ^ start
}
