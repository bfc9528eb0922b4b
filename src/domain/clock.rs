//! Where the engine's "now" comes from: the system clock in production, a virtual one in tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::time::Timestamp;

/// The single source of time for an engine.
///
/// The core asks its clock and nothing else, so a run is reproducible from its
/// inputs and the clock readings alone.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// True when time only moves because somebody moves it ([`VirtualClock`]):
    /// the engine loop then never sleeps waiting for a timer.
    fn is_virtual(&self) -> bool {
        false
    }

    /// Moves a virtual clock to `t`; the system clock ignores it.
    fn advance_to(&self, _t: Timestamp) {}
}

/// Real time, read from the operating system.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(since_epoch.as_millis() as i64)
    }
}

/// Time that stands still until it is moved; clones share the same reading.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock {
    millis: Arc<AtomicI64>,
}

impl VirtualClock {
    pub fn starting_at(t: Timestamp) -> Self {
        VirtualClock { millis: Arc::new(AtomicI64::new(t.0)) }
    }

    pub fn set(&self, t: Timestamp) {
        self.millis.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn advance_to(&self, t: Timestamp) {
        // Time never runs backwards, even if asked to.
        self.millis.fetch_max(t.0, Ordering::SeqCst);
    }
}
