//! The embedding API: a builder that starts an engine loop on its own thread, and an async handle.
//!
//! The Lua VM cannot move between threads, so the engine lives on one thread for its
//! whole life; the [`Handle`] sends it commands and awaits the replies.
//!
//! With a [`Store`], the loop is durable: at start it replays the journal (see [`crate::store`])
//! on a virtual clock, then switches to the real one, so timers that fell due while the process
//! was down fire at once and the others keep their times. While running it takes every command
//! already queued as one batch, journals the steps the batch took in one transaction (group
//! commit), and only then replies and publishes updates: nothing is acknowledged before it is
//! durable.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot, watch};

use crate::agent::Agent;
use crate::clock::{Clock, SystemClock, VirtualClock};
use crate::conversation::Conversation;
use crate::engine::{Engine, EngineConfig, ScriptStatus};
use crate::error::{EngineError, InputError, LoadError};
use crate::input::Input;
use crate::notification::{Notification, NotificationLog};
use crate::outbox::{Backlog, EventRoute, Message, Outbox};
use crate::policy::Policy;
use crate::script::{Limits, Loaded, Sources};
use crate::store::{JournalStep, Record, Store, StoreError};
use crate::time::Duration;
use crate::timer::TimerInfo;
use crate::update::{LabelledUpdate, Stamped, Update};

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
        let Builder { config, clock: engine_clock, policies, mut store, routes, on_log, sources } = self;
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
        let outbox = Outgoing {
            routes,
            messages: Vec::new(),
            notifications: Vec::new(),
            backlog: backlog.clone(),
            wake,
            notify_wake: notify_wake.clone(),
        };
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
                    };
                    let end = run.run(rx).map_err(|e| format!("the engine stopped: {e}"));
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
            notify_wake,
            backlog,
            thread: Some(thread),
        })
    }
}

/// What a channel's deliverer needs: the outbox, a signal after each commit that wrote
/// messages, and the backlog counts to keep current.
pub struct Deliveries {
    pub outbox: Box<dyn Outbox>,
    pub wake: watch::Receiver<u64>,
    pub backlog: Backlog,
}

/// What the notification deliverer needs: the notifications in the store with their log, and
/// a signal after each commit that wrote some.
pub struct Notifications {
    pub log: Box<dyn NotificationLog>,
    pub wake: watch::Receiver<u64>,
}

/// The engine loop's side of the outbox.
struct Outgoing {
    routes: Vec<EventRoute>,
    /// Messages of the steps since the last commit.
    messages: Vec<Message>,
    /// Notifications of the steps since the last commit (kept only with a store).
    notifications: Vec<Arc<Notification>>,
    backlog: Backlog,
    wake: watch::Sender<u64>,
    notify_wake: Arc<watch::Sender<u64>>,
}

/// Builds the engine: from the scripts folder when there is no journal, otherwise by replaying
/// it. Returns the records still to be journaled (the first generation, or a reload of scripts
/// that changed while the process was down).
fn recover(
    config: EngineConfig,
    given: Option<Sources>,
    clock: Arc<dyn Clock>,
    policies: Vec<Box<dyn Policy>>,
    store: Option<&mut dyn Store>,
) -> Result<(Engine, Vec<Record>), EngineError> {
    let fresh = |config, clock, policies, given: Option<Sources>| match given {
        Some(sources) => Engine::from_sources(config, sources, clock, policies),
        None => Engine::new(config, clock, policies),
    };
    let Some(store) = store else {
        return Ok((fresh(config, clock, policies, given)?, Vec::new()));
    };
    let records = store.records()?;
    let Some((first, rest)) = records.split_first() else {
        let engine = fresh(config, clock, policies, given)?;
        let first = Record { at: engine.now(), step: JournalStep::Scripts { sources: engine.sources().clone() } };
        return Ok((engine, vec![first]));
    };
    let replay_failed = |seq: usize, why: String| EngineError::Store(StoreError::Replay { seq: seq + 1, why });
    let JournalStep::Scripts { sources } = &first.step else {
        return Err(replay_failed(0, "the journal does not start with a generation of scripts".into()));
    };
    let replay = VirtualClock::starting_at(first.at);
    let mut engine = Engine::from_sources(config, sources.clone(), Arc::new(replay.clone()), policies)
        .map_err(|e| replay_failed(0, e.to_string()))?;
    for (seq, record) in rest.iter().enumerate() {
        replay.set(record.at);
        match &record.step {
            JournalStep::Input { input } => {
                engine.handle(input.clone()).map_err(|e| replay_failed(seq + 1, format!("input refused: {e}")))?;
            }
            JournalStep::Timers => {
                engine.fire_due();
            }
            JournalStep::Scripts { sources } => {
                engine.reload_sources(sources.clone()).map_err(|e| replay_failed(seq + 1, e.to_string()))?;
            }
        }
    }
    // A virtual clock carries on from where the journal ends; the system clock is already past it.
    clock.advance_to(replay.now());
    engine.set_clock(clock);
    let mut journal = Vec::new();
    // Scripts edited while the process was down: load them now, or keep the journal's if they fail
    // (the diagnostics show in the script status).
    let before = engine.generation();
    let reloaded = match given {
        Some(sources) => engine.reload_sources(sources),
        None => engine.reload(),
    };
    if reloaded.is_ok_and(|(generation, _)| generation != before) {
        journal.push(Record { at: engine.now(), step: JournalStep::Scripts { sources: engine.sources().clone() } });
    }
    Ok((engine, journal))
}

type Reply<T> = oneshot::Sender<T>;

/// A check run on the engine thread right before an input, e.g. that a token may touch it; it
/// may also complete the input from the engine's state (an id resolved into a key).
pub type Guard = Box<dyn FnOnce(&Engine, &mut Input) -> Result<(), InputError> + Send>;

enum Command {
    Input(Input, Option<Guard>, Reply<Result<Vec<Stamped>, EngineError>>),
    Read(Box<dyn FnOnce(&Engine) + Send>),
    Advance(Duration, Reply<Result<Vec<Stamped>, EngineError>>),
    /// Scripts loaded and checked off the engine thread, or why they were refused.
    Reload(Result<Box<Loaded>, LoadError>, Reply<Result<u64, EngineError>>),
    Shutdown,
}

/// What a reload needs to read and check a new generation away from the engine thread.
struct Checker {
    scripts: PathBuf,
    limits: Limits,
    host: crate::script::Host,
}

impl Checker {
    /// Reads the scripts folder and loads it into a VM of its own: a broken, hostile or runaway
    /// file fails here, on the caller's thread, within its load budget, and a valid generation
    /// reaches the engine thread ready to swap in.
    fn check(&self) -> Result<Box<Loaded>, LoadError> {
        self.load(Sources::read(&self.scripts)?)
    }

    fn load(&self, sources: Sources) -> Result<Box<Loaded>, LoadError> {
        Loaded::load(sources, &self.limits, &self.host).map(Box::new)
    }
}

/// A running engine. Cheap calls that queue a command and await its reply.
pub struct Handle {
    tx: mpsc::Sender<Command>,
    checker: Arc<Checker>,
    updates: broadcast::Sender<LabelledUpdate>,
    clock: Arc<dyn Clock>,
    stopped: watch::Receiver<Option<Result<(), String>>>,
    /// Handed once to whoever delivers the outbox (see [`Handle::take_deliveries`]).
    deliveries: std::sync::Mutex<Option<Deliveries>>,
    /// Handed once to the notification deliverer (see [`Handle::take_notifications`]).
    notifications: std::sync::Mutex<Option<Notifications>>,
    /// The notification log, for readers (the API).
    log: Option<Arc<std::sync::Mutex<Box<dyn NotificationLog>>>>,
    /// Wakes the notification deliverer.
    notify_wake: Arc<watch::Sender<u64>>,
    backlog: Backlog,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Submits one input and returns the updates it caused, once they are durable.
    pub async fn submit(&self, input: Input) -> Result<Vec<Stamped>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Input(input, None, reply))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Like [`Handle::submit`], but `guard` runs first, on the engine thread, and its error
    /// refuses the input (nothing changes). It may complete the input from the engine's state.
    pub async fn submit_guarded(
        &self,
        input: Input,
        guard: impl FnOnce(&Engine, &mut Input) -> Result<(), InputError> + Send + 'static,
    ) -> Result<Vec<Stamped>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Input(input, Some(Box::new(guard)), reply))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Runs `f` on the engine thread between two inputs and returns what it computed.
    /// It sees only durable state: pending steps are committed before it runs.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Read(Box::new(move |engine| {
            let _ = reply.send(f(engine));
        })))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, EngineError> {
        let id = id.to_string();
        self.read(move |e| e.agent(&id).cloned()).await
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>, EngineError> {
        let id = id.to_string();
        self.read(move |e| e.conversation(&id).cloned()).await
    }

    pub async fn timers(&self) -> Result<Vec<TimerInfo>, EngineError> {
        self.read(|e| e.timers()).await
    }

    pub async fn script_status(&self) -> Result<ScriptStatus, EngineError> {
        self.read(|e| e.script_status()).await
    }

    /// Moves a virtual clock forward, firing due timers in order. Refused on the system clock.
    pub async fn advance(&self, by: Duration) -> Result<Vec<Stamped>, EngineError> {
        if !self.clock.is_virtual() {
            return Err(EngineError::Unsupported("advance needs a virtual clock".into()));
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Advance(by, reply))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Swaps in scripts given as text ([`Builder::from_sources`]), loaded and checked off the
    /// engine thread like [`Handle::reload`]'s; on failure the old rules keep running.
    pub async fn reload_sources(&self, sources: Sources) -> Result<u64, EngineError> {
        let checker = self.checker.clone();
        self.swap_in(move || checker.load(sources)).await
    }

    /// Reloads the scripts folder; on failure the old rules keep running. The new generation
    /// is read, loaded and checked on a blocking thread, so loading (even a file that runs
    /// until its load budget is spent) never holds up the engine; the engine thread only
    /// swaps the loaded generation in.
    pub async fn reload(&self) -> Result<u64, EngineError> {
        let checker = self.checker.clone();
        self.swap_in(move || checker.check()).await
    }

    /// Loads a generation on a blocking thread and has the engine swap it in.
    async fn swap_in(
        &self,
        load: impl FnOnce() -> Result<Box<Loaded>, LoadError> + Send + 'static,
    ) -> Result<u64, EngineError> {
        let loaded = tokio::task::spawn_blocking(load)
            .await
            .map_err(|e| EngineError::Unsupported(format!("the scripts check stopped: {e}")))?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::Reload(loaded, reply))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// The outbox, for the deliverers; `None` without a store or once taken.
    pub fn take_deliveries(&self) -> Option<Deliveries> {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The notifications to deliver, for the deliverer; `None` without a store or once taken.
    pub fn take_notifications(&self) -> Option<Notifications> {
        self.notifications.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The notifications and their delivery log (with a store).
    pub fn notification_log(&self) -> Option<Arc<std::sync::Mutex<Box<dyn NotificationLog>>>> {
        self.log.clone()
    }

    /// Puts a dead notification back in line (its attempts start over) and wakes the deliverer.
    /// `Ok(None)` without a store; `Ok(Some(false))` when there is no such dead notification.
    pub fn revive_notification(&self, id: u64) -> Result<Option<bool>, EngineError> {
        let Some(log) = &self.log else { return Ok(None) };
        let revived = log.lock().unwrap_or_else(|e| e.into_inner()).revive(id, SystemClock.now())?;
        if revived {
            self.notify_wake.send_modify(|n| *n += 1);
        }
        Ok(Some(revived))
    }

    /// Undelivered outbox messages per channel.
    pub fn outbox_backlog(&self) -> std::collections::BTreeMap<String, u64> {
        self.backlog.snapshot()
    }

    /// Every update from now on, as it happens (a slow reader misses the oldest ones).
    pub fn subscribe(&self) -> broadcast::Receiver<LabelledUpdate> {
        self.updates.subscribe()
    }

    /// Waits until the engine stops: `Ok` after a shutdown, the reason if it failed (a store error).
    pub async fn stopped(&self) -> Result<(), String> {
        let mut stopped = self.stopped.clone();
        let end = match stopped.wait_for(|end| end.is_some()).await {
            Ok(end) => end.clone().unwrap_or(Ok(())),
            Err(_) => Err("the engine thread ended without saying why (it panicked; see stderr)".into()),
        };
        end
    }

    /// Stops the engine after the inputs already queued, once their steps are durable; usable
    /// from async code through a shared handle.
    pub async fn close(&self) -> Result<(), String> {
        let _ = self.tx.send(Command::Shutdown);
        self.stopped().await
    }

    /// Stops the engine after the inputs already queued, and waits until their steps are durable.
    pub fn shutdown(mut self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn send(&self, command: Command) -> Result<(), EngineError> {
        self.tx.send(command).map_err(|_| EngineError::Stopped)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

/// Commands taken in one batch, at most: one commit covers all of their steps.
const MAX_BATCH: usize = 1024;

/// A reply or a publication held back until the batch it belongs to is durable.
type Deferred = Box<dyn FnOnce(&broadcast::Sender<LabelledUpdate>, Option<&str>) + Send>;

/// The engine thread: takes commands in batches, journals their steps, then acknowledges.
struct Loop {
    engine: Engine,
    clock: Arc<dyn Clock>,
    store: Option<Box<dyn Store>>,
    updates: broadcast::Sender<LabelledUpdate>,
    /// Steps taken since the last commit.
    journal: Vec<Record>,
    outbox: Outgoing,
    on_log: Option<LogSink>,
    done: Vec<Deferred>,
}

impl Loop {
    fn run(mut self, rx: mpsc::Receiver<Command>) -> Result<(), StoreError> {
        // Steps recovery left to journal (a first generation, a reload at start).
        self.commit()?;
        loop {
            self.fire_due();
            // What the timers did is made durable and published before the loop sleeps: on a
            // quiet line nothing else would wake it to do so (a missed-call alert would wait for
            // the next request).
            self.commit()?;
            let mut command = match self.wait(&rx) {
                Wait::Command(c) => Some(c),
                Wait::Timeout => None,
                Wait::Closed => return self.commit(),
            };
            for _ in 0..MAX_BATCH {
                let Some(c) = command.take() else { break };
                if !self.step(c)? {
                    return self.commit();
                }
                self.fire_due();
                command = rx.try_recv().ok();
            }
            self.commit()?;
        }
    }

    fn wait(&self, rx: &mpsc::Receiver<Command>) -> Wait {
        let timeout = match self.engine.next_due() {
            Some(due) if !self.clock.is_virtual() => {
                std::time::Duration::from_millis((due - self.clock.now()).0.max(0) as u64)
            }
            _ => return rx.recv().map_or(Wait::Closed, Wait::Command),
        };
        match rx.recv_timeout(timeout) {
            Ok(c) => Wait::Command(c),
            Err(mpsc::RecvTimeoutError::Timeout) => Wait::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => Wait::Closed,
        }
    }

    /// Runs one command; false when it asks the loop to stop.
    fn step(&mut self, command: Command) -> Result<bool, StoreError> {
        match command {
            Command::Input(mut input, guard, reply) => {
                if let Some(Err(e)) = guard.map(|g| g(&self.engine, &mut input)) {
                    self.reply(reply, Err(e.into()));
                    return Ok(true);
                }
                let journaled = self.store.is_some().then(|| input.clone());
                match self.engine.handle(input) {
                    Ok(list) => {
                        if let Some(input) = journaled {
                            self.journal.push(Record { at: self.engine.now(), step: JournalStep::Input { input } });
                        }
                        self.publish(&list);
                        self.reply(reply, Ok(list));
                    }
                    Err(e) => self.reply(reply, Err(e.into())),
                }
            }
            Command::Read(f) => {
                self.commit()?;
                f(&self.engine);
            }
            Command::Advance(by, reply) => {
                let until = self.clock.now() + by;
                let mut all = Vec::new();
                while let Some(list) = self.engine.fire_next(until) {
                    self.journal.push(Record { at: self.engine.now(), step: JournalStep::Timers });
                    all.extend(list);
                }
                self.clock.advance_to(until);
                self.publish(&all);
                self.reply(reply, Ok(all));
            }
            Command::Reload(Err(refused), reply) => {
                self.engine.reload_refused(&refused);
                self.reply(reply, Err(refused.into()));
            }
            Command::Reload(Ok(loaded), reply) => {
                match (self.engine.generation(), self.engine.reload_loaded(*loaded)) {
                    (before, Ok((generation, list))) => {
                        if generation != before {
                            let sources = self.engine.sources().clone();
                            self.journal.push(Record { at: self.engine.now(), step: JournalStep::Scripts { sources } });
                        }
                        self.publish(&list);
                        self.reply(reply, Ok(generation));
                    }
                    (_, Err(e)) => self.reply(reply, Err(e.into())),
                }
            }
            Command::Shutdown => return Ok(false),
        }
        Ok(true)
    }

    /// Fires the timers due on a running (system) clock; a virtual clock only moves by `advance`.
    fn fire_due(&mut self) {
        if self.clock.is_virtual() || self.engine.next_due().is_none_or(|due| due > self.clock.now()) {
            return;
        }
        let list = self.engine.fire_due();
        self.journal.push(Record { at: self.engine.now(), step: JournalStep::Timers });
        self.publish(&list);
    }

    /// Holds the updates back until they are durable, labelled with what they concern now, and
    /// writes the outbox messages they make with the step.
    fn publish(&mut self, list: &[Stamped]) {
        if let Some(sink) = &self.on_log {
            for s in list {
                if let Update::Log { level, message } = &s.update {
                    sink(level, message);
                }
            }
        }
        if self.store.is_some() {
            for s in list {
                if let Update::Notified { notification } = &s.update {
                    self.outbox.notifications.push(notification.clone());
                }
            }
        }
        // Labelling costs lookups and allocations on every step; with nobody listening, skip it.
        let subscribed = self.updates.receiver_count() > 0;
        if list.is_empty() || (!subscribed && self.outbox.routes.is_empty()) {
            return;
        }
        let list: Vec<LabelledUpdate> = list.iter().map(|s| self.engine.event(s.clone())).collect();
        for event in &list {
            let routes = &self.outbox.routes;
            self.outbox.messages.extend(routes.iter().filter_map(|r| r.message(event)));
        }
        if !subscribed {
            return;
        }
        self.done.push(Box::new(move |updates, failed| {
            if failed.is_none() {
                for u in list {
                    let _ = updates.send(u);
                }
            }
        }));
    }

    fn reply<T: Send + 'static>(&mut self, reply: Reply<Result<T, EngineError>>, result: Result<T, EngineError>) {
        self.done.push(Box::new(move |_, failed| {
            let _ = reply.send(match failed {
                Some(why) if result.is_ok() => Err(EngineError::NotDurable(why.to_string())),
                _ => result,
            });
        }));
    }

    /// Makes the journaled steps durable, then delivers what waited for them. If the store
    /// fails, nothing pending is acknowledged and the loop stops: the state in memory is ahead
    /// of the journal, and a restart rebuilds it from what was durable.
    fn commit(&mut self) -> Result<(), StoreError> {
        let result = match &mut self.store {
            Some(store) => store.append(&self.journal, &self.outbox.messages, &self.outbox.notifications),
            None => Ok(()),
        };
        self.journal.clear();
        if result.is_ok() && !self.outbox.messages.is_empty() {
            self.outbox.backlog.added(&self.outbox.messages);
            self.outbox.wake.send_modify(|n| *n += 1);
        }
        if result.is_ok() && !self.outbox.notifications.is_empty() {
            self.outbox.notify_wake.send_modify(|n| *n += 1);
        }
        self.outbox.messages.clear();
        self.outbox.notifications.clear();
        let failed = result.as_ref().err().map(|e| e.to_string());
        for done in self.done.drain(..) {
            done(&self.updates, failed.as_deref());
        }
        result
    }
}

enum Wait {
    Command(Command),
    Timeout,
    Closed,
}
