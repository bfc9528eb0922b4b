//! The embedding API: a builder that starts an engine loop on its own thread, and an async handle.
//!
//! The Lua VM cannot move between threads, so the engine lives on one thread for its
//! whole life; the [`Handle`] sends it commands and awaits the replies.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot};

use crate::agent::Agent;
use crate::clock::{Clock, SystemClock};
use crate::conversation::Conversation;
use crate::engine::{Engine, EngineConfig};
use crate::error::{EngineError, InputError, LoadError};
use crate::input::Input;
use crate::policy::Policy;
use crate::script::Limits;
use crate::time::Duration;
use crate::timer::TimerInfo;
use crate::update::Stamped;

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
}

impl Builder {
    /// An engine on the given scripts folder, on the system clock.
    pub fn new(scripts: impl Into<PathBuf>) -> Self {
        Builder { config: EngineConfig::new(scripts), clock: Arc::new(SystemClock), policies: Vec::new() }
    }

    /// Use another clock, such as a [`VirtualClock`](crate::clock::VirtualClock) in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Adds a policy written in Rust; queues name it like any Lua policy (and it wins over
    /// a Lua policy of the same name).
    pub fn policy(mut self, policy: impl Policy + 'static) -> Self {
        self.policies.push(Box::new(policy));
        self
    }

    /// Loads the scripts and starts the engine thread. Fails with every diagnostic if the
    /// scripts do not load.
    pub fn start(self) -> Result<Handle, LoadError> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (started_tx, started_rx) = mpsc::channel();
        let (updates, _) = broadcast::channel(4096);
        let publish = updates.clone();
        let clock = self.clock.clone();
        let thread = std::thread::Builder::new()
            .name("rota-engine".into())
            .spawn(move || match Engine::new(self.config, self.clock, self.policies) {
                Ok(engine) => {
                    let _ = started_tx.send(Ok(()));
                    run_loop(engine, rx, publish);
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                }
            })
            .map_err(|e| LoadError {
                diagnostics: vec![crate::Diagnostic::new(
                    "<host>",
                    None,
                    format!("cannot start the engine thread: {e}"),
                )],
            })?;
        started_rx.recv().unwrap_or_else(|_| {
            let why = "the engine thread ended before it started (it panicked; see stderr)";
            Err(LoadError { diagnostics: vec![crate::Diagnostic::new("<host>", None, why)] })
        })?;
        Ok(Handle { tx, updates, clock, thread: Some(thread) })
    }
}

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Input(Input, Reply<Result<Vec<Stamped>, InputError>>),
    Read(Box<dyn FnOnce(&Engine) + Send>),
    Advance(Duration, Reply<Vec<Stamped>>),
    Reload(Reply<Result<u64, LoadError>>),
    Shutdown,
}

/// A running engine. Cheap calls that queue a command and await its reply.
pub struct Handle {
    tx: mpsc::Sender<Command>,
    updates: broadcast::Sender<Stamped>,
    clock: Arc<dyn Clock>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// Submits one input and returns the updates it caused.
    pub async fn submit(&self, input: Input) -> Result<Vec<Stamped>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Input(input, reply))?;
        Ok(rx.await.map_err(|_| EngineError::Stopped)??)
    }

    /// Runs `f` on the engine thread between two inputs and returns what it computed.
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

    /// Moves a virtual clock forward, firing due timers in order. Refused on the system clock.
    pub async fn advance(&self, by: Duration) -> Result<Vec<Stamped>, EngineError> {
        if !self.clock.is_virtual() {
            return Err(EngineError::Unsupported("advance needs a virtual clock".into()));
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Advance(by, reply))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Reloads the scripts folder; on failure the old rules keep running.
    pub async fn reload(&self) -> Result<u64, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Reload(reply))?;
        Ok(rx.await.map_err(|_| EngineError::Stopped)??)
    }

    /// Every update from now on, as it happens (a slow reader misses the oldest ones).
    pub fn subscribe(&self) -> broadcast::Receiver<Stamped> {
        self.updates.subscribe()
    }

    /// Stops the engine after the inputs already queued.
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

fn run_loop(mut engine: Engine, rx: mpsc::Receiver<Command>, updates: broadcast::Sender<Stamped>) {
    let publish = |list: &[Stamped]| {
        for u in list {
            let _ = updates.send(u.clone());
        }
    };
    loop {
        let wait = match engine.next_due() {
            Some(due) if !engine.clock_is_virtual() => {
                Some(std::time::Duration::from_millis((due - engine.now()).0.max(0) as u64))
            }
            _ => None,
        };
        let command = match wait {
            Some(w) => match rx.recv_timeout(w) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(c) => Some(c),
                Err(_) => return,
            },
        };
        match command {
            Some(Command::Input(input, reply)) => {
                let result = engine.handle(input);
                if let Ok(list) = &result {
                    publish(list);
                }
                let _ = reply.send(result);
            }
            Some(Command::Read(f)) => f(&engine),
            Some(Command::Advance(by, reply)) => {
                let list = engine.advance_to(engine.now() + by);
                publish(&list);
                let _ = reply.send(list);
            }
            Some(Command::Reload(reply)) => {
                let result = engine.reload().map(|(generation, list)| {
                    publish(&list);
                    generation
                });
                let _ = reply.send(result);
            }
            Some(Command::Shutdown) => return,
            None => {}
        }
        if !engine.clock_is_virtual() {
            let list = engine.fire_due();
            publish(&list);
        }
    }
}
