//! Snapshots from the engine loop: when one is due, taking it between two batches, and the
//! thread that writes it so the loop does not wait for the write.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::engine::{Engine, SnapshotError, SNAPSHOT_FORMAT};
use crate::store::{SnapshotSink, Store, StoreError, StoredSnapshot};
use crate::time::{Duration, Timestamp};

/// When the engine loop takes a snapshot: after `every_steps` journaled steps, or `every` on
/// the engine's clock after the last one when any step was journaled since; the store keeps
/// the newest `keep`, and the journal behind the oldest of them only for `audit`. A start
/// reads the newest and replays only the journal after it.
///
/// Taking a snapshot pauses the loop in proportion to what the engine holds, so by steps
/// one is taken only when the loop has run at least nine times as long as the last
/// pause since it, or has nothing else to do: under a heavy load with a large state,
/// snapshots keep at most about a tenth of the loop's time instead of coming every
/// `every_steps` and crowding out inputs, and one put off is taken when the load stops.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SnapshotPolicy {
    pub every_steps: u64,
    pub every: Duration,
    pub keep: usize,
    pub audit: Duration,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every_steps: 10_000,
            every: Duration::from_secs(600),
            keep: 2,
            audit: Duration::from_secs(7 * 86_400),
        }
    }
}

impl SnapshotPolicy {
    pub fn new(every_steps: u64, every: Duration, keep: usize, audit: Duration) -> Self {
        SnapshotPolicy { every_steps: every_steps.max(1), every, keep: keep.max(1), audit }
    }
}

/// How many times its own pause the loop runs between two snapshots taken by steps.
const SHARE: u32 = 9;

/// The loop's side: counts steps, takes snapshots, hands them to the writer thread.
pub(super) struct Snapshotter {
    policy: SnapshotPolicy,
    steps: u64,
    last: Option<Timestamp>,
    /// When the last snapshot was taken and how long that paused the loop (a stopwatch,
    /// never the engine's clock: it decides only when to snapshot, never what happens).
    paused: Option<(std::time::Instant, std::time::Duration)>,
    writer: mpsc::Sender<StoredSnapshot>,
    /// What the writer could not write, for the loop to log and count.
    failures: Arc<Mutex<Vec<String>>>,
    /// "No snapshot now" is said once until a snapshot is taken again.
    said_not_now: bool,
}

impl Snapshotter {
    pub(super) fn start(policy: SnapshotPolicy, mut sink: Box<dyn SnapshotSink>) -> Result<Self, StoreError> {
        let (writer, written) = mpsc::channel::<StoredSnapshot>();
        let failures = Arc::new(Mutex::new(Vec::new()));
        let failed = failures.clone();
        let (keep, audit) = (policy.keep, policy.audit);
        std::thread::Builder::new()
            .name("rota-snapshots".into())
            .spawn(move || {
                // Only the newest waiting snapshot is worth writing.
                while let Ok(mut snapshot) = written.recv() {
                    while let Ok(newer) = written.try_recv() {
                        snapshot = newer;
                    }
                    if let Err(e) = sink.save(&snapshot, keep, audit) {
                        let message = format!("snapshot of journal record {} not written: {e}", snapshot.position);
                        failed.lock().unwrap_or_else(|p| p.into_inner()).push(message);
                    }
                }
            })
            .map_err(|e| StoreError::Io { message: format!("cannot start the snapshot writer: {e}"), source: None })?;
        Ok(Snapshotter { policy, steps: 0, last: None, paused: None, writer, failures, said_not_now: false })
    }

    /// Called after `steps` steps were made durable (`idle`: and no command waits): takes a
    /// snapshot of the engine when one is due. Returns what to log (`level`, text).
    pub(super) fn committed(
        &mut self,
        steps: usize,
        idle: bool,
        engine: &mut Engine,
        store: &mut dyn Store,
    ) -> Vec<(&'static str, String)> {
        let mut log: Vec<(&'static str, String)> = Vec::new();
        for failure in self.failures.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            engine.metrics_mut().snapshot_failures += 1;
            log.push(("error", failure));
        }
        self.steps += steps as u64;
        let now = engine.now();
        let last = *self.last.get_or_insert(now);
        let rested = idle || self.paused.is_none_or(|(at, pause)| at.elapsed() >= pause * SHARE);
        let due =
            (self.steps >= self.policy.every_steps && rested) || (self.steps > 0 && now - last >= self.policy.every);
        if !due {
            return log;
        }
        let position = match store.position() {
            Ok(position) => position,
            Err(e) => {
                log.push(("error", format!("no snapshot: {e}")));
                return log;
            }
        };
        let started = std::time::Instant::now();
        let taken = engine.snapshot();
        self.paused = Some((std::time::Instant::now(), started.elapsed()));
        let pause = started.elapsed().as_nanos() as u64;
        self.steps = 0;
        self.last = Some(now);
        match taken {
            Ok(snapshot) => {
                self.said_not_now = false;
                let m = engine.metrics_mut();
                m.snapshots += 1;
                m.snapshot_pause_max_ns = m.snapshot_pause_max_ns.max(pause);
                log.extend(snapshot.warnings.into_iter().map(|w| ("warn", format!("snapshot: {w}"))));
                let stored = StoredSnapshot { position, at: now, format: SNAPSHOT_FORMAT, bytes: snapshot.bytes };
                if self.writer.send(stored).is_err() {
                    log.push(("error", "the snapshot writer has stopped; starts replay more of the journal".into()));
                }
            }
            Err(e @ SnapshotError::NotNow(_)) => {
                if !std::mem::replace(&mut self.said_not_now, true) {
                    log.push(("warn", format!("{e}; the journal keeps everything meanwhile")));
                }
            }
            Err(e) => {
                engine.metrics_mut().snapshot_failures += 1;
                log.push(("error", e.to_string()));
            }
        }
        log
    }
}
