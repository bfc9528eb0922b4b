//! Which partitions' engines a request reaches, and asking them: every partition holding one
//! of the token's units (a list, an event stream), or the one holding what the request names
//! (an agent, a conversation, a queue, a numbered task). With one partition, that one.

use std::sync::Arc;

use futures_util::future::try_join_all;

use super::auth::Scope;
use super::error::ApiError;
use super::Api;
use crate::engine::Engine;
use crate::error::{EngineError, InputError};
use crate::runtime::Handle;

impl Api {
    /// The engine of every partition holding a unit the token may see, with its index (a
    /// token of no unit reaches the first, which finds nothing of its).
    pub(super) fn reached(&self, scope: &Scope) -> Vec<(usize, Arc<Handle>)> {
        let partitioning = self.engines.partitioning();
        let handles = self.engines.handles().iter().enumerate();
        let reached: Vec<_> = handles
            .filter(|(i, _)| scope.reaches(|u| partitioning.of(u) as usize == *i))
            .map(|(i, h)| (i, h.clone()))
            .collect();
        match reached.is_empty() {
            true => vec![(0, self.any().clone())],
            false => reached,
        }
    }

    /// `f` on every engine the token reaches, all at once; the answers in partition order.
    pub(super) async fn each<R: Send + 'static>(
        &self,
        scope: &Scope,
        f: impl Fn(&Engine) -> R + Clone + Send + 'static,
    ) -> Result<Vec<R>, EngineError> {
        try_join_all(self.reached(scope).into_iter().map(|(_, h)| {
            let f = f.clone();
            async move { h.read(move |e| f(e)).await }
        }))
        .await
    }

    /// The one engine where `find` finds what a request names (an agent, a conversation: its
    /// key, and what the caller reads of it in the same visit), and what it read. Found in
    /// several partitions (the same id in units of different partitions), it is ambiguous as
    /// within one: `ambiguous` makes the refusal, naming the units.
    pub(super) async fn find<T: Send + 'static>(
        &self,
        scope: &Scope,
        find: impl Fn(&Engine) -> Result<(Arc<str>, T), InputError> + Clone + Send + 'static,
        ambiguous: impl FnOnce(Vec<String>) -> InputError,
    ) -> Result<(Arc<Handle>, T), ApiError> {
        let reached = self.reached(scope);
        let answers = self.each(scope, find).await?;
        let (mut found, mut units, mut refused) = (Vec::new(), Vec::new(), None);
        for ((_, handle), answer) in reached.into_iter().zip(answers) {
            match answer {
                Ok((key, read)) => {
                    units.push(crate::unit::split(&key).0.to_string());
                    found.push((handle, read));
                }
                Err(
                    InputError::AmbiguousAgent { units: u, .. } | InputError::AmbiguousConversation { units: u, .. },
                ) => units.extend(u),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        if units.len() > 1 {
            units.sort();
            return Err(ambiguous(units).into());
        }
        match (found.pop(), refused) {
            (Some(found), _) => Ok(found),
            (None, Some(refused)) => Err(refused.into()),
            // `reached` is never empty, so some partition answered.
            (None, None) => Err(EngineError::Stopped.into()),
        }
    }

    /// The engine of the first reached partition where `holds` says yes (else the first
    /// reached, whose own check refuses what the request names). With one partition, that one,
    /// without asking.
    pub(super) async fn locate(
        &self,
        scope: &Scope,
        holds: impl Fn(&Engine) -> bool + Clone + Send + 'static,
    ) -> Result<Arc<Handle>, EngineError> {
        if self.engines.handles().len() == 1 {
            return Ok(self.any().clone());
        }
        let reached = self.reached(scope);
        let held = self.each(scope, holds).await?;
        let at = held.iter().position(|&h| h).unwrap_or(0);
        Ok(reached[at].1.clone())
    }

    /// The engine holding `unit`.
    pub(super) fn unit(&self, unit: &str) -> &Arc<Handle> {
        self.engines.unit(unit)
    }

    /// The engine that numbered `n` (a task, a workflow instance, a notification).
    pub(super) fn numbered(&self, n: u64) -> &Arc<Handle> {
        self.engines.numbered(n)
    }

    /// An engine for what every partition has alike (presences, teams, the scripts' files).
    pub(super) fn any(&self) -> &Arc<Handle> {
        &self.engines.handles()[0]
    }
}
