//! Building the engine at start: from the scripts when the journal is empty, otherwise from the
//! latest snapshot and the journal after it (or the whole journal when there is no snapshot).

use std::sync::Arc;

use crate::clock::{Clock, VirtualClock};
use crate::engine::{Engine, EngineConfig};
use crate::error::EngineError;
use crate::policy::Policy;
use crate::script::Sources;
use crate::store::{JournalStep, Record, Store, StoreError};

/// Builds the engine: from the scripts folder when there is no journal, otherwise by replaying
/// it. Returns the records still to be journaled (the first generation, or a reload of scripts
/// that changed while the process was down).
pub(super) fn recover(
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
    // The journal streams in: the first record (a generation of scripts) makes the engine,
    // each later one is applied to it, and none is kept once it is.
    let replay_failed = |seq: usize, why: String| StoreError::Replay { seq, why };
    let mut started: Option<(Engine, VirtualClock)> = None;
    let mut making = Some((config, policies));
    let mut seq = 0;
    if let Some(snapshot) = store.latest_snapshot()? {
        let (config, policies) = making.take().expect("nothing was made yet");
        let replay = VirtualClock::starting_at(snapshot.at);
        let engine = Engine::restore(config, &snapshot.bytes, Arc::new(replay.clone()), policies).map_err(|e| {
            replay_failed(snapshot.position as usize, format!("the snapshot of this record cannot be restored: {e}"))
        })?;
        started = Some((engine, replay));
        seq = snapshot.position as usize;
    }
    store.replay(seq as u64, &mut |record| {
        seq += 1;
        let Some((engine, replay)) = started.as_mut() else {
            let JournalStep::Scripts { sources } = record.step else {
                return Err(replay_failed(seq, "the journal does not start with a generation of scripts".into()));
            };
            let (config, policies) = making.take().expect("the first record is made once");
            let replay = VirtualClock::starting_at(record.at);
            let engine = Engine::from_sources(config, sources, Arc::new(replay.clone()), policies)
                .map_err(|e| replay_failed(seq, e.to_string()))?;
            started = Some((engine, replay));
            return Ok(());
        };
        replay.set(record.at);
        match record.step {
            JournalStep::Input { input } => {
                engine.handle(input).map_err(|e| replay_failed(seq, format!("input refused: {e}")))?;
            }
            JournalStep::Timers => {
                engine.fire_due();
            }
            JournalStep::Scripts { sources } => {
                engine.reload_sources(sources).map_err(|e| replay_failed(seq, e.to_string()))?;
            }
        }
        Ok(())
    })?;
    let Some((mut engine, replay)) = started else {
        let (config, policies) = making.take().expect("nothing was replayed");
        let engine = fresh(config, clock, policies, given)?;
        let first = Record { at: engine.now(), step: JournalStep::Scripts { sources: engine.sources().clone() } };
        return Ok((engine, vec![first]));
    };
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
