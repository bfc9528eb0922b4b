//! [`Handle`]: the async side of a running engine, and the commands it sends the engine loop.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot, watch};

use crate::agent::Agent;
use crate::clock::{Clock, SystemClock};
use crate::conversation::Conversation;
use crate::engine::{Engine, ScriptStatus};
use crate::error::{EngineError, InputError, LoadError};
use crate::input::Input;
use crate::outbox::{Backlog, Outbox};
use crate::script::{Limits, Loaded, Sources};
use crate::store::{ClusterLog, ClusterView, NotificationLog, StoreError};
use crate::time::Duration;
use crate::timer::TimerInfo;
use crate::update::{LabelledUpdate, Stamped};

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

pub(super) type Reply<T> = oneshot::Sender<T>;

/// A check run on the engine thread right before an input, e.g. that a token may touch it; it
/// may also complete the input from the engine's state (an id resolved into a key).
pub type Guard = Box<dyn FnOnce(&Engine, &mut Input) -> Result<(), InputError> + Send>;

/// One result per input of a batch, in order.
pub type BatchResults = Vec<Result<Vec<Stamped>, EngineError>>;

pub(super) enum Command {
    Input(Input, Option<Guard>, Reply<Result<Vec<Stamped>, EngineError>>),
    /// Inputs handled in order in one go and made durable in one commit.
    Batch(Vec<(Input, Option<Guard>)>, Reply<BatchResults>),
    Read(Box<dyn FnOnce(&Engine) + Send>),
    Advance(Duration, Reply<Result<Vec<Stamped>, EngineError>>),
    /// Scripts loaded and checked off the engine thread, or why they were refused; with a
    /// vote when several partitions reload as one.
    Reload(Result<Box<Loaded>, LoadError>, Option<Vote>, Reply<Result<u64, EngineError>>),
    Shutdown,
}

/// One partition's part in a reload of several as one: it says whether it can install the
/// new generation (`ready`), then waits, holding everything else up, to be told whether all
/// could (`verdict`: the refusal that stops it, if one did; no word is a refusal too).
pub(super) struct Vote {
    pub(super) ready: Reply<Result<(), LoadError>>,
    pub(super) verdict: std::sync::mpsc::Receiver<Option<LoadError>>,
}

/// What a reload needs to read and check a new generation away from the engine thread.
pub(super) struct Checker {
    pub(super) scripts: PathBuf,
    pub(super) limits: Limits,
    pub(super) host: crate::script::Host,
}

impl Checker {
    /// Reads the scripts folder and loads it into a VM of its own: a broken, hostile or runaway
    /// file fails here, on the caller's thread, within its load budget, and a valid generation
    /// reaches the engine thread ready to swap in.
    pub(super) fn check(&self) -> Result<Box<Loaded>, LoadError> {
        self.load(Sources::read(&self.scripts)?)
    }

    pub(super) fn load(&self, sources: Sources) -> Result<Box<Loaded>, LoadError> {
        Loaded::load(sources, &self.limits, &self.host).map(Box::new)
    }
}

/// A running engine. Cheap calls that queue a command and await its reply.
pub struct Handle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) checker: Arc<Checker>,
    pub(super) updates: broadcast::Sender<LabelledUpdate>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) stopped: watch::Receiver<Option<Result<(), Arc<StoreError>>>>,
    /// Handed once to whoever delivers the outbox (see [`Handle::take_deliveries`]).
    pub(super) deliveries: std::sync::Mutex<Option<Deliveries>>,
    /// Handed once to the notification deliverer (see [`Handle::take_notifications`]).
    pub(super) notifications: std::sync::Mutex<Option<Notifications>>,
    /// The notification log, for readers (the API).
    pub(super) log: Option<Arc<std::sync::Mutex<Box<dyn NotificationLog>>>>,
    /// The nodes sharing the store, when several may (PostgreSQL).
    pub(super) cluster: Option<Arc<std::sync::Mutex<Box<dyn ClusterLog>>>>,
    /// Wakes the notification deliverer.
    pub(super) notify_wake: Arc<watch::Sender<u64>>,
    pub(super) backlog: Backlog,
    pub(super) history: Option<super::EventHistory>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Submits one input and returns the updates it caused, once they are durable.
    pub async fn submit(&self, input: Input) -> Result<Vec<Stamped>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Input(input, None, reply))?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Submits many inputs in one round trip: the engine handles them in order, one after the
    /// other as if submitted one by one, and makes them durable in one commit. One result per
    /// input: an input refused does not stop the ones after it.
    pub async fn submit_many(&self, inputs: Vec<Input>) -> Result<BatchResults, EngineError> {
        self.submit_many_guarded(inputs.into_iter().map(|i| (i, None)).collect()).await
    }

    /// [`Handle::submit_many`], each input with an optional [`Guard`] run right before it.
    pub async fn submit_many_guarded(&self, inputs: Vec<(Input, Option<Guard>)>) -> Result<BatchResults, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Batch(inputs, reply))?;
        rx.await.map_err(|_| EngineError::Stopped)
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

    /// Moves a virtual clock to `t` (not back), firing the timers due on the way at their times.
    pub async fn advance_to(&self, t: crate::time::Timestamp) -> Result<Vec<Stamped>, EngineError> {
        let by = t - self.clock.now();
        if by.0 < 0 {
            return Err(EngineError::Unsupported(format!("the clock is at {}, past {t}", self.clock.now())));
        }
        self.advance(by).await
    }

    /// Swaps in scripts given as text ([`super::Builder::from_sources`]), loaded and checked off the
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
        self.send(Command::Reload(loaded, None, reply))?;
        let result = rx.await.map_err(|_| EngineError::Stopped)?;
        match &result {
            Ok(generation) => tracing::info!(target: "rota::scripts", generation, "scripts reloaded"),
            Err(e) => tracing::warn!(target: "rota::scripts", "reload rejected, the previous rules keep running: {e}"),
        }
        result
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

    /// Who shares the store and who owns it, when several nodes may (PostgreSQL); `None` else.
    pub fn cluster(&self) -> Option<Result<ClusterView, StoreError>> {
        let cluster = self.cluster.as_ref()?;
        Some(cluster.lock().unwrap_or_else(|e| e.into_inner()).view())
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

    /// The recent events, numbered, for resuming a stream (unless the builder kept none).
    pub fn events(&self) -> Option<&super::EventHistory> {
        self.history.as_ref()
    }

    /// Waits until the engine stops: `Ok` after a shutdown, the reason if it failed (a store error).
    pub async fn stopped(&self) -> Result<(), EngineError> {
        let mut stopped = self.stopped.clone();
        let end = match stopped.wait_for(|end| end.is_some()).await {
            Ok(end) => end.clone().unwrap_or(Ok(())).map_err(EngineError::Failed),
            Err(_) => Err(EngineError::Panicked),
        };
        end
    }

    /// Stops the engine after the inputs already queued, once their steps are durable; usable
    /// from async code through a shared handle.
    pub async fn close(&self) -> Result<(), EngineError> {
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

    pub(super) fn send(&self, command: Command) -> Result<(), EngineError> {
        self.tx.send(command).map_err(|_| EngineError::Stopped)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}
