//! The engine thread: takes commands in batches, journals their steps in one commit, then replies and publishes.

use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::{EngineError, LoadError};
use crate::input::Input;
use crate::notification::Notification;
use crate::outbox::{Backlog, EventRoute, Message};
use crate::store::{JournalStep, Record, Store, StoreError};
use crate::update::{LabelledUpdate, Stamped, Update};

use super::builder::LogSink;
use super::handle::{Command, Reply};

/// The engine loop's side of the outbox.
pub(super) struct Outgoing {
    pub(super) routes: Vec<EventRoute>,
    /// Messages of the steps since the last commit.
    pub(super) messages: Vec<Message>,
    /// Notifications of the steps since the last commit (kept only with a store).
    pub(super) notifications: Vec<Arc<Notification>>,
    pub(super) backlog: Backlog,
    pub(super) wake: watch::Sender<u64>,
    pub(super) notify_wake: Arc<watch::Sender<u64>>,
}

/// Commands taken in one batch, at most: one commit covers all of their steps.
const MAX_BATCH: usize = 1024;

/// A reply or a publication held back until the batch it belongs to is durable.
type Deferred = Box<dyn FnOnce(&broadcast::Sender<LabelledUpdate>, Option<&str>) + Send>;

/// The engine thread: takes commands in batches, journals their steps, then acknowledges.
pub(super) struct Loop {
    pub(super) engine: Engine,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) store: Option<Box<dyn Store>>,
    pub(super) updates: broadcast::Sender<LabelledUpdate>,
    /// Steps taken since the last commit.
    pub(super) journal: Vec<Record>,
    pub(super) outbox: Outgoing,
    pub(super) on_log: Option<LogSink>,
    pub(super) done: Vec<Deferred>,
    /// With a store: takes a snapshot when one is due, after a commit.
    pub(super) snapshots: Option<super::snapshots::Snapshotter>,
    /// The recent events, numbered as they are published.
    pub(super) history: Option<super::EventHistory>,
}

impl Loop {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Command>) -> Result<(), StoreError> {
        // Steps recovery left to journal (a first generation, a reload at start).
        self.commit()?;
        loop {
            self.fire_due();
            // What the timers did is made durable and published before the loop sleeps: on a
            // quiet line nothing else would wake it to do so (a missed-call alert would wait for
            // the next request).
            self.commit()?;
            let waiting = match rx.try_recv() {
                Ok(c) => Wait::Command(c),
                // Nothing waits: the moment for a snapshot a heavy load put off.
                Err(_) => {
                    self.snapshot(0, true);
                    self.wait(&rx)
                }
            };
            let mut command = match waiting {
                Wait::Command(c) => Some(c),
                // An idle loop still learns that its store was taken from it (a lost lease).
                Wait::Timeout => {
                    if let Some(store) = &mut self.store {
                        store.check()?;
                    }
                    None
                }
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
        let due = match self.engine.next_due() {
            Some(due) if !self.clock.is_virtual() => {
                Some(std::time::Duration::from_millis((due - self.clock.now()).0.max(0) as u64))
            }
            _ => None,
        };
        let check = self.store.as_ref().and_then(|s| s.check_every());
        let Some(timeout) = due.into_iter().chain(check).min() else {
            return rx.recv().map_or(Wait::Closed, Wait::Command);
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
            Command::Input(input, guard, reply) => {
                let result = self.apply(input, guard);
                self.reply(reply, result);
            }
            Command::Batch(inputs, reply) => {
                let mut results = Vec::with_capacity(inputs.len());
                for (input, guard) in inputs {
                    results.push(self.apply(input, guard));
                    // Time moves between the inputs of a batch as between separate commands.
                    self.fire_due();
                }
                self.done.push(Box::new(move |_, failed| {
                    let results = results
                        .into_iter()
                        .map(|r| match (failed, r) {
                            (Some(why), Ok(_)) => Err(EngineError::NotDurable(why.to_string())),
                            (_, r) => r,
                        })
                        .collect();
                    let _ = reply.send(results);
                }));
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
            Command::Reload(Err(refused), _, reply) => {
                self.engine.reload_refused(&refused);
                self.reply(reply, Err(refused.into()));
            }
            Command::Reload(Ok(loaded), vote, reply) => {
                let result = self.reload(*loaded, vote);
                self.reply(reply, result);
            }
            Command::Shutdown => return Ok(false),
        }
        Ok(true)
    }

    /// Swaps a loaded generation in, journals and publishes what that did; with a vote, only
    /// once every partition has said it can.
    fn reload(&mut self, loaded: crate::script::Loaded, vote: Option<super::handle::Vote>) -> Result<u64, EngineError> {
        let before = self.engine.generation();
        let prepared = match self.engine.prepare_reload(loaded) {
            Ok(prepared) => prepared,
            Err(refused) => {
                if let Some(vote) = vote {
                    let _ = vote.ready.send(Err(refused.clone()));
                }
                return Err(refused.into());
            }
        };
        if let Some(vote) = vote {
            let _ = vote.ready.send(Ok(()));
            // Nothing else happens here until every partition has answered.
            if let Some(refused) = vote.verdict.recv().unwrap_or_else(|_| Some(LoadError::aborted())) {
                self.engine.abort_reload(prepared, &refused);
                return Err(refused.into());
            }
        }
        let (generation, list) = self.engine.commit_reload(prepared);
        if generation != before {
            let sources = self.engine.sources().clone();
            self.journal.push(Record { at: self.engine.now(), step: JournalStep::Scripts { sources } });
        }
        self.publish(&list);
        Ok(generation)
    }

    /// Handles one input (after its guard), journals and publishes what it did.
    fn apply(&mut self, mut input: Input, guard: Option<super::handle::Guard>) -> Result<Vec<Stamped>, EngineError> {
        if let Some(Err(e)) = guard.map(|g| g(&self.engine, &mut input)) {
            return Err(e.into());
        }
        let journaled = self.store.is_some().then(|| input.clone());
        let list = self.engine.handle(input)?;
        if let Some(input) = journaled {
            self.journal.push(Record { at: self.engine.now(), step: JournalStep::Input { input } });
        }
        self.publish(&list);
        Ok(list)
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
        for s in list {
            if let Update::Log { level, message } = &s.update {
                self.log(level, message);
            }
        }
        if self.store.is_some() {
            for s in list {
                if let Update::Notified { notification } = &s.update {
                    self.outbox.notifications.push(notification.clone());
                }
            }
        }
        // Labelling costs lookups and allocations on every step; with nobody listening and no
        // history to keep, skip it.
        let subscribed = self.updates.receiver_count() > 0;
        let kept = self.history.is_some();
        if list.is_empty() || (!subscribed && !kept && self.outbox.routes.is_empty()) {
            return;
        }
        let list: Vec<LabelledUpdate> = list.iter().map(|s| self.engine.event(s.clone())).collect();
        for event in &list {
            let routes = &self.outbox.routes;
            self.outbox.messages.extend(routes.iter().filter_map(|r| r.message(event)));
        }
        if !subscribed && !kept {
            return;
        }
        let history = self.history.clone();
        self.done.push(Box::new(move |updates, failed| {
            if failed.is_none() {
                // Numbered once durable, in the order subscribers get them.
                let listening = || updates.receiver_count() > 0;
                for u in list {
                    let u = match &history {
                        Some(h) => h.publish(u, listening),
                        None => Some(u),
                    };
                    if let Some(u) = u {
                        let _ = updates.send(u);
                    }
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
        let steps = self.journal.len();
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
        // Between two batches the engine's state is exactly the journal's: the moment for a
        // snapshot, taken here and written on the snapshot thread.
        if result.is_ok() {
            self.snapshot(steps, false);
        }
        result
    }

    /// Tells the snapshotter `steps` more are durable (`idle`: and nothing waits), so it
    /// takes a snapshot when one is due.
    fn snapshot(&mut self, steps: usize, idle: bool) {
        let said = match (&mut self.snapshots, &mut self.store) {
            (Some(snapshots), Some(store)) => snapshots.committed(steps, idle, &mut self.engine, store.as_mut()),
            _ => Vec::new(),
        };
        for (level, message) in said {
            self.log(level, &message);
        }
    }

    /// A line the rules or the engine log: a `tracing` event (target `rota::rules`), and the
    /// embedder's [`LogSink`] when it set one.
    fn log(&self, level: &'static str, message: &str) {
        if let Some(sink) = &self.on_log {
            sink(level, message);
        }
        match level {
            "error" => tracing::error!(target: "rota::rules", "{message}"),
            "warn" => tracing::warn!(target: "rota::rules", "{message}"),
            "debug" => tracing::debug!(target: "rota::rules", "{message}"),
            _ => tracing::info!(target: "rota::rules", "{message}"),
        }
    }
}

enum Wait {
    Command(Command),
    Timeout,
    Closed,
}
