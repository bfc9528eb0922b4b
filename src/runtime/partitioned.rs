//! [`Partitioned`]: one engine per partition of the organization units, each on its own thread
//! with its own store (journal stream), clock and timers, reloaded as one.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::error::{EngineError, LoadError};
use crate::partition::{Partition, Partitioning};
use crate::script::{Loaded, Sources};

use super::handle::{Checker, Command, Vote};
use super::{Builder, Handle};

/// Several engines, one per partition: a unit's agents, queues and conversations are all in
/// its partition's engine ([`Partitioned::unit`]), so each engine decides alone and they run
/// side by side, on as many cores.
///
/// ```no_run
/// # async fn demo() -> Result<(), rota::EngineError> {
/// use rota::partition::Partitioning;
/// let two = Partitioning::new(2, Default::default()).unwrap();
/// let rota = rota::runtime::Partitioned::start(two, |p| {
///     let store = rota::store::SqliteStore::open(format!("rota-{}.db", p.name())).unwrap();
///     rota::runtime::Builder::new("scripts").store(store)
/// })?;
/// rota.unit("north").submit(rota::Input::SignIn { agent: "nora".into() }).await?;
/// rota.reload().await?; // every partition, or none
/// # Ok(()) }
/// ```
pub struct Partitioned {
    partitioning: Arc<Partitioning>,
    handles: Vec<Arc<Handle>>,
    /// One reload at a time: two voting at once could each hold a partition the other waits on.
    reloading: tokio::sync::Mutex<()>,
}

impl Partitioned {
    /// Starts an engine for each partition from the builder `builder` makes for it (its own
    /// store: one journal stream per partition). All start, or none.
    pub fn start(
        partitioning: Partitioning,
        mut builder: impl FnMut(&Partition) -> Builder,
    ) -> Result<Partitioned, EngineError> {
        let partitioning = Arc::new(partitioning);
        let handles = partitioning
            .parts()
            .into_iter()
            .map(|p| builder(&p).partition(p).start().map(Arc::new))
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(Partitioned { partitioning, handles, reloading: tokio::sync::Mutex::new(()) })
    }

    /// One engine holding every unit, as one partition.
    pub fn single(handle: Arc<Handle>) -> Partitioned {
        let partitioning = Arc::new(Partitioning::single());
        Partitioned { partitioning, handles: vec![handle], reloading: tokio::sync::Mutex::new(()) }
    }

    pub fn partitioning(&self) -> &Arc<Partitioning> {
        &self.partitioning
    }

    /// Every partition's engine, by index (a reload of one alone is not a reload of all: use
    /// [`Partitioned::reload`]).
    pub fn handles(&self) -> &[Arc<Handle>] {
        &self.handles
    }

    /// The engine holding `unit`'s agents, queues and conversations: where its inputs go.
    pub fn unit(&self, unit: &str) -> &Arc<Handle> {
        &self.handles[self.partitioning.of(unit) as usize]
    }

    /// The engine that made what is numbered `n` (a notification, a workflow instance, a task:
    /// each partition numbers its own, see [`crate::partition::Numbering`]).
    pub fn numbered(&self, n: u64) -> &Arc<Handle> {
        let count = u64::from(self.partitioning.count());
        &self.handles[(n.saturating_sub(1) % count) as usize]
    }

    /// Resolves when any partition's engine has stopped, with why (a partition that lost its
    /// lease, a failed commit): the others cannot go on as one center without it.
    pub async fn stopped(&self) -> Result<(), EngineError> {
        let all = self.handles.iter().map(|h| Box::pin(h.stopped()));
        futures_util::future::select_all(all).await.0
    }

    /// Stops every engine after the inputs it already has (committed); the first error, if any.
    pub async fn close(&self) -> Result<(), EngineError> {
        let closed = futures_util::future::join_all(self.handles.iter().map(|h| h.close())).await;
        closed.into_iter().collect()
    }

    /// Reloads the scripts folder in every partition as one: each loads the new generation
    /// and checks it against its own state, and all swap it in only if none refused; otherwise
    /// all keep the generation they had, and each notes why (the refusals of all).
    pub async fn reload(&self) -> Result<u64, EngineError> {
        self.vote(|checker: &Checker| checker.check()).await
    }

    /// [`Partitioned::reload`] with scripts given as text.
    pub async fn reload_sources(&self, sources: Sources) -> Result<u64, EngineError> {
        self.vote(move |checker: &Checker| checker.load(sources.clone())).await
    }

    async fn vote(
        &self,
        load: impl Fn(&Checker) -> Result<Box<Loaded>, LoadError> + Clone + Send + 'static,
    ) -> Result<u64, EngineError> {
        let _one = self.reloading.lock().await;
        // Each engine needs a VM of its own: the generation is loaded once per partition.
        let mut loads = Vec::new();
        for handle in &self.handles {
            let (checker, load) = (handle.checker.clone(), load.clone());
            loads.push(tokio::task::spawn_blocking(move || load(&checker)));
        }
        let mut loaded = Vec::new();
        for l in loads {
            loaded.push(l.await.map_err(|e| EngineError::Unsupported(format!("the scripts check stopped: {e}")))?);
        }
        // Broken scripts are broken everywhere: every partition notes the refusal.
        let refused = loaded.iter().find_map(|l| l.as_ref().err().cloned());
        if let Some(refused) = refused {
            for handle in &self.handles {
                let (reply, answered) = oneshot::channel();
                handle.send(Command::Reload(Err(refused.clone()), None, reply))?;
                let _ = answered.await;
            }
            tracing::warn!(target: "rota::scripts", "reload rejected, the previous rules keep running: {refused}");
            return Err(refused.into());
        }
        let mut ready = Vec::new();
        let mut verdicts = Vec::new();
        let mut replies = Vec::new();
        for (handle, loaded) in self.handles.iter().zip(loaded) {
            let (ready_tx, ready_rx) = oneshot::channel();
            let (verdict_tx, verdict) = std::sync::mpsc::channel();
            let (reply, replied) = oneshot::channel();
            // An engine that has stopped drops its `ready`, which counts as a refusal below.
            let _ = handle.send(Command::Reload(loaded, Some(Vote { ready: ready_tx, verdict }), reply));
            ready.push(ready_rx);
            verdicts.push(verdict_tx);
            replies.push(replied);
        }
        let mut diagnostics = Vec::new();
        for (p, answer) in ready.into_iter().enumerate() {
            match answer.await {
                Ok(Ok(())) => {}
                Ok(Err(refused)) => diagnostics.extend(refused.diagnostics),
                Err(_) => {
                    let why = format!("partition {} has stopped", self.partitioning.part(p as u32).name());
                    diagnostics.push(crate::error::Diagnostic::new("<reload>", None, why));
                }
            }
        }
        let verdict = (!diagnostics.is_empty()).then_some(LoadError { diagnostics });
        for v in verdicts {
            let _ = v.send(verdict.clone());
        }
        let mut generation = Err(EngineError::Stopped);
        for replied in replies {
            let answer = replied.await.map_err(|_| EngineError::Stopped).and_then(|r| r);
            if generation.is_err() || answer.is_err() {
                generation = answer;
            }
        }
        match &generation {
            Ok(generation) => {
                tracing::info!(target: "rota::scripts", generation, "scripts reloaded in every partition")
            }
            Err(e) => tracing::warn!(target: "rota::scripts", "reload rejected, every partition keeps its rules: {e}"),
        }
        generation
    }
}
