//! Hot reload: watches the scripts folder and reloads the engine when files settle.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use tokio::sync::mpsc;

use crate::error::EngineError;
use crate::runtime::Partitioned;

/// Keeps the folder watched while it lives.
pub struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Watches `dir` (recursively: editors write temporary files and rename them) and, once
/// changes have been quiet for `debounce`, reloads the engine. Each reload's result goes to
/// `results`: the new generation, or the diagnostics while the old rules keep running.
/// Must be called inside a tokio runtime.
pub fn watch(
    dir: &Path,
    engines: Arc<Partitioned>,
    debounce: Duration,
    results: mpsc::UnboundedSender<Result<u64, EngineError>>,
) -> Result<Watch, notify::Error> {
    let (changed_tx, mut changed) = mpsc::unbounded_channel::<()>();
    let mut debouncer = new_debouncer(debounce, None, move |events: DebounceEventResult| {
        let relevant = match events {
            Ok(events) => events.iter().any(|e| !e.kind.is_access()),
            Err(_) => true,
        };
        if relevant {
            let _ = changed_tx.send(());
        }
    })?;
    debouncer.watch(dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while changed.recv().await.is_some() {
            // Several batches of changes queued behind one reload need only one more reload.
            while changed.try_recv().is_ok() {}
            if results.send(engines.reload().await).is_err() {
                return;
            }
        }
    });
    Ok(Watch { _debouncer: debouncer })
}
