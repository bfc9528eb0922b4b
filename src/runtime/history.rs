//! The recent events, numbered, so a client whose stream dropped picks up where it was.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::update::LabelledUpdate;

/// Events `rota serve` keeps for resuming a stream.
pub const KEEP_EVENTS: usize = 10_000;

/// The latest published events, each numbered in publishing order. An event's id is
/// `{boot}-{seq}`: `boot` tells one run of the engine from another, so an id from before a
/// restart is recognised as such rather than confused with a number of this run.
#[derive(Clone)]
pub struct EventHistory {
    /// Fixed for the run, so naming an event takes no lock.
    boot: u64,
    recent: Arc<Mutex<Recent>>,
}

struct Recent {
    next: u64,
    keep: usize,
    events: VecDeque<LabelledUpdate>,
}

/// What a client that last saw event `id` has missed.
pub enum Since {
    /// These, in order (possibly none).
    Missed(Vec<LabelledUpdate>),
    /// More than the history holds, or an id of another run: read the state again.
    Reset,
}

impl EventHistory {
    pub(super) fn new(boot: u64, keep: usize) -> Self {
        EventHistory { boot, recent: Arc::new(Mutex::new(Recent { next: 1, keep, events: VecDeque::new() })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers `event` and keeps it (forgetting the oldest beyond the window); hands it back
    /// numbered when someone `listening` wants it, without copying it when nobody does.
    ///
    /// `listening` is asked after the event is kept: a stream that subscribes later reads the
    /// history after subscribing, so it finds the event there; one that subscribed before is
    /// counted, and gets it sent.
    pub(super) fn publish(&self, mut event: LabelledUpdate, listening: impl Fn() -> bool) -> Option<LabelledUpdate> {
        let mut r = self.lock();
        event.seq = r.next;
        r.next += 1;
        if r.keep == 0 {
            return listening().then_some(event);
        }
        let dropped = (r.events.len() == r.keep).then(|| r.events.pop_front());
        r.events.push_back(event);
        let back = listening().then(|| r.events.back().cloned()).flatten();
        drop(r);
        // The forgotten event is freed after the lock is let go.
        drop(dropped);
        back
    }

    /// The id of a published event.
    pub fn id(&self, event: &LabelledUpdate) -> String {
        format!("{}-{}", self.boot, event.seq)
    }

    /// The id of the latest event published (of none yet: the one before the first), for a
    /// stream that starts here.
    pub fn latest(&self) -> String {
        format!("{}-{}", self.boot, self.lock().next - 1)
    }

    /// What came after the event `last` (an id this history gave).
    pub fn since(&self, last: &str) -> Since {
        let r = self.lock();
        let Some((boot, seq)) =
            last.split_once('-').and_then(|(b, s)| Some((b.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
        else {
            return Since::Reset;
        };
        if boot != self.boot || seq >= r.next {
            return Since::Reset;
        }
        match r.events.front() {
            // Nothing missed, or everything missed is still here.
            _ if seq + 1 == r.next => Since::Missed(Vec::new()),
            Some(first) if first.seq <= seq + 1 => {
                Since::Missed(r.events.iter().filter(|e| e.seq > seq).cloned().collect())
            }
            _ => Since::Reset,
        }
    }
}
