//! Swapping in a new generation of scripts without losing any state.

use std::sync::Arc;

use super::*;
use crate::rules::{QueueDef, DEFAULT_UNIT};

/// The loaded generation of scripts, as `GET /v1/scripts` shows it.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ScriptStatus {
    pub generation: u64,
    /// Rule files and modules, relative to the scripts folder.
    pub files: Vec<String>,
    /// The diagnostics of the last reload if it failed (the previous generation kept running).
    pub last_error: Option<Vec<Diagnostic>>,
}

impl Engine {
    /// Reads the scripts folder again and swaps the new rules in between two inputs.
    /// On any problem the old rules stay in force and the diagnostics are returned; on
    /// success, the new generation and the updates of re-evaluating waiting conversations.
    pub fn reload(&mut self) -> Result<(u64, Vec<Stamped>), LoadError> {
        match Sources::read(&self.config.scripts) {
            Ok(sources) => self.reload_sources(sources),
            Err(e) => {
                self.reload_error = Some(e.diagnostics.clone());
                Err(e)
            }
        }
    }

    /// Notes a reload whose scripts were refused before they reached the engine (checked on
    /// another thread), so the script status shows why.
    pub fn reload_refused(&mut self, refused: &LoadError) {
        self.reload_error = Some(refused.diagnostics.clone());
    }

    /// Why the last reload failed, until one succeeds.
    pub fn reload_error(&self) -> Option<&[Diagnostic]> {
        self.reload_error.as_deref()
    }

    /// What is loaded now, and why the last reload failed if it did.
    pub fn script_status(&self) -> ScriptStatus {
        ScriptStatus {
            generation: self.generation(),
            files: self
                .sources
                .rules
                .iter()
                .map(|(f, _)| f.clone())
                .chain(self.sources.modules.iter().map(|m| m.1.clone()))
                .collect(),
            last_error: self.reload_error.clone(),
        }
    }

    /// Swaps in scripts already read; see [`Engine::reload`]. They are loaded here, on the
    /// engine thread; the runtime loads a generation on another thread and swaps it in (`reload_loaded`).
    /// Scripts identical to the loaded ones are not loaded again (the generation stays).
    pub fn reload_sources(&mut self, sources: Sources) -> Result<(u64, Vec<Stamped>), LoadError> {
        if sources == self.sources {
            return Ok(self.unchanged());
        }
        let loaded =
            script::Loaded::load(sources, &self.config.limits, &host(self.rust_policies.values(), &self.config));
        match loaded {
            Ok(loaded) => self.reload_loaded(loaded),
            Err(e) => {
                self.reload_error = Some(e.diagnostics.clone());
                Err(e)
            }
        }
    }

    /// Swaps in a generation already loaded and validated (on another thread, say): only the
    /// swap itself runs here. See [`Engine::reload`].
    pub(crate) fn reload_loaded(&mut self, loaded: script::Loaded) -> Result<(u64, Vec<Stamped>), LoadError> {
        match self.prepare_reload(loaded) {
            Ok(prepared) => Ok(self.commit_reload(prepared)),
            Err(refused) => Err(refused),
        }
    }

    /// The first half of a reload: the new generation installed, everything needed to put the
    /// old one back kept. Nothing else may happen before [`Engine::commit_reload`] or
    /// [`Engine::abort_reload`]: partitions reloading as one each prepare, and all commit only
    /// if none refused.
    pub(crate) fn prepare_reload(&mut self, loaded: script::Loaded) -> Result<Prepared, LoadError> {
        if loaded.sources == self.sources {
            return Ok(Prepared(None));
        }
        let script::Loaded { sources, rules, mut scripts } = loaded;
        self.read_clock();
        let generation = self.scripts.generation() + 1;
        scripts.set_generation(generation);
        // Memos that are not plain data start over empty in the new generation, and say so.
        let (memos, mut lost) = self.scripts.queue_memos();
        let mut conversation_memos: HashMap<Arc<str>, serde_json::Value> = HashMap::new();
        for c in self.conversations.values().filter(|c| c.status.is_waiting()) {
            match self.scripts.conversation_memo(&c.id) {
                Ok(Some(memo)) => {
                    conversation_memos.insert(c.id.clone(), memo);
                }
                Ok(None) => {}
                Err(e) => lost.push(e),
            }
        }
        let old_scripts = std::mem::replace(&mut self.scripts, scripts);
        let before = Installed::take(self);
        if let Err(diagnostics) = self.install(rules, memos, &conversation_memos) {
            self.scripts = old_scripts;
            before.restore(self);
            let refused = LoadError { diagnostics };
            self.reload_refused(&refused);
            return Err(refused);
        }
        Ok(Prepared(Some(Swap { sources, old_scripts, before, lost })))
    }

    /// Puts back what [`Engine::prepare_reload`] replaced, because of `refused` (another
    /// partition's refusal).
    pub(crate) fn abort_reload(&mut self, prepared: Prepared, refused: &LoadError) {
        if let Some(swap) = prepared.0 {
            self.scripts = swap.old_scripts;
            swap.before.restore(self);
        }
        self.reload_refused(refused);
    }

    /// The second half of a reload: the new generation's, and the updates of asking every
    /// waiting conversation again under it.
    pub(crate) fn commit_reload(&mut self, prepared: Prepared) -> (u64, Vec<Stamped>) {
        let Some(Swap { sources, old_scripts, lost, .. }) = prepared.0 else {
            return self.unchanged();
        };
        self.reload_error = None;
        let generation = self.scripts.generation();
        // The scripts' durable memory is the engine's, not a generation's: it moves over.
        self.scripts.put_kv(old_scripts.take_kv());
        // Like a task router's re-evaluation: waiting conversations meet the new policies now.
        for c in self.conversations.values_mut() {
            c.waiting_for.clear();
        }
        for q in 0..self.queues.len() {
            self.epoch += 1;
            self.queues[q].epoch = self.epoch;
            self.reevaluate.insert(q as u32);
        }
        self.sources = sources;
        for message in lost {
            self.emit(Update::Log { level: "warn", message });
        }
        self.recheck_instances();
        // Every waiting conversation is asked under the new rules now, even where no agent is
        // free: the new policy may overflow it, give up, or wait for someone else.
        let waiting: Vec<Arc<str>> = self.queues.iter().flat_map(|q| q.waiting.iter().cloned()).collect();
        for id in waiting {
            if self.conversations.get(&id).is_some_and(|c| c.status == ConversationStatus::Queued) {
                self.decide_because(&id, format!("scripts reloaded (generation {generation})"));
            }
        }
        self.settle();
        (generation, std::mem::take(&mut self.updates))
    }

    /// A reload of the scripts already loaded: nothing changes, and the last error is past.
    fn unchanged(&mut self) -> (u64, Vec<Stamped>) {
        self.reload_error = None;
        (self.generation(), Vec::new())
    }

    /// Makes `rules` current: agents keep their run-time state, queues keep their waiting
    /// conversations, and the new VM gets a complete view.
    pub(super) fn install(
        &mut self,
        rules: RuleSet,
        memos: BTreeMap<String, serde_json::Value>,
        conversation_memos: &HashMap<Arc<str>, serde_json::Value>,
    ) -> Result<(), Vec<Diagnostic>> {
        let mut rules = rules.within(&self.config.partition);
        // A queue that still holds conversations cannot disappear.
        let mut problems = Vec::new();
        let mut live = vec![0usize; self.queues.len()];
        for c in self.conversations.values().filter(|c| !c.status.is_ended()) {
            live[c.queue as usize] += 1;
        }
        for (old, &live) in self.queues.iter().zip(&live) {
            if live > 0 && rules.queue_index(&old.id).is_none() {
                problems.push(Diagnostic::new(
                    "<reload>",
                    None,
                    format!(
                        "queue `{}` was removed but still holds {live} conversation(s); keep it until they end",
                        old.id
                    ),
                ));
            }
        }
        for q in rules.queues.iter().filter(|q| !q.retired) {
            let known = |p: &str| self.scripts.has_policy(p) || self.rust_policies.contains_key(p);
            for p in std::iter::once(&q.policy).chain(q.fallback.iter()) {
                if !known(p) {
                    problems.push(Diagnostic::new(
                        q.at.file.clone(),
                        q.at.line,
                        format!("queue `{}`: policy `{p}` has no implementation", q.id),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // A removed queue that conversations still point at stays, retired, so they keep their
        // own queue id and unit (never another queue's); a later reload drops it once none do.
        for (old_ix, old) in self.rules.queues.iter().enumerate() {
            let gone = rules.queues.iter().all(|q| q.id != old.id);
            if gone && self.conversations.values().any(|c| c.queue as usize == old_ix) {
                rules.queues.push(QueueDef {
                    agents: Vec::new(),
                    max_wait: None,
                    on_max_wait: None,
                    on_exhausted: Default::default(),
                    aging: None,
                    levels: Default::default(),
                    hours: None,
                    after_hours: Default::default(),
                    fallback: None,
                    standby: Vec::new(),
                    workflows: BTreeMap::new(),
                    retired: true,
                    ..old.clone()
                });
            }
        }
        let units: BTreeSet<&str> = rules.queues.iter().map(|q| q.unit.as_str()).collect();
        rules.other_units = units.into_iter().filter(|u| *u != DEFAULT_UNIT).map(str::to_string).collect();
        let now = self.now();
        self.agents.place(self.agents.defs(&rules), now);
        let mut members = self.agents.memberships(&rules);
        for a in self.agents.iter_mut() {
            a.queues.clear();
        }
        let mut old_queues: HashMap<Arc<str>, (u32, QueueRuntime)> =
            self.queues.drain(..).enumerate().map(|(i, q)| (q.id.clone(), (i as u32, q))).collect();
        let mut remap = HashMap::new();
        for (i, q) in rules.queues.iter().enumerate() {
            let members = std::mem::take(&mut members[i]);
            for &m in &members {
                self.agents[m as usize].queues.push(i as u32);
            }
            let id: Arc<str> = Arc::from(q.id.as_str());
            let waiting = match old_queues.remove(&id) {
                Some((old_ix, old)) => {
                    remap.insert(old_ix, i as u32);
                    old.waiting
                }
                None => VecDeque::new(),
            };
            // New rules may have mended the policy: a queue's failures start over.
            let unit = Arc::from(q.unit.as_str());
            self.queues.push(QueueRuntime { id, unit, members, waiting, epoch: 0, failing: 0 });
        }
        for c in self.conversations.values_mut() {
            c.queue = remap[&c.queue];
        }
        for w in rules.workflows.values() {
            self.workflows.stage_numbers_mut().assign(w);
        }
        self.rules = rules;
        self.rebuild_roster();
        let track = self.rules.settings.track_work_day;
        let view = (|| {
            for a in self.agents.iter() {
                self.scripts.add_agent(a, track).map_err(|e| e.to_string())?;
            }
            let members: Vec<&[AgentIx]> = self.queues.iter().map(|q| &q.members[..]).collect();
            self.scripts.set_queues(&self.rules, &members, &memos).map_err(|e| e.to_string())?;
            for c in self.conversations.values().filter(|c| c.status.is_waiting()) {
                let queue = self.queues[c.queue as usize].id.clone();
                self.scripts.add_conversation(c, &queue, conversation_memos.get(&c.id)).map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })();
        view.map_err(|e| vec![Diagnostic::new("<reload>", None, format!("could not build the Lua view: {e}"))])
    }
}

/// What the embedding program brings to a load: the specs of its policies written in Rust (so
/// queues can name them) and its Lua functions.
pub(crate) fn host<'a>(policies: impl IntoIterator<Item = &'a Box<dyn Policy>>, config: &EngineConfig) -> script::Host {
    script::Host { policies: policies.into_iter().map(|p| p.spec()).collect(), functions: config.functions.clone() }
}

/// A reload half done ([`Engine::prepare_reload`]); `None`: the scripts were the loaded ones.
pub(crate) struct Prepared(Option<Swap>);

/// What a prepared reload replaced.
struct Swap {
    sources: Sources,
    old_scripts: script::Scripts,
    before: Installed,
    /// Memos the new generation could not take, said once it is in.
    lost: Vec<String>,
}

/// What [`Engine::install`] changes, kept so a reload that fails at any point (even late,
/// while the new VM's view is built) leaves agents, queues and conversations as they were.
/// Timers, offers and the conversations themselves are not touched by `install`.
struct Installed {
    rules: RuleSet,
    agents: super::agents::Agents,
    queues: Vec<QueueRuntime>,
    conversation_queues: Vec<(Arc<str>, u32)>,
    stage_numbers: StageNumbers,
}

impl Installed {
    fn take(e: &Engine) -> Self {
        Installed {
            rules: e.rules.clone(),
            agents: e.agents.clone(),
            queues: e.queues.clone(),
            conversation_queues: e.conversations.values().map(|c| (c.id.clone(), c.queue)).collect(),
            stage_numbers: e.workflows.stage_numbers().clone(),
        }
    }

    fn restore(self, e: &mut Engine) {
        e.rules = self.rules;
        e.agents = self.agents;
        e.queues = self.queues;
        for (id, q) in self.conversation_queues {
            if let Some(c) = e.conversations.get_mut(&id) {
                c.queue = q;
            }
        }
        *e.workflows.stage_numbers_mut() = self.stage_numbers;
        e.rebuild_roster();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use crate::conversation::NewConversation;

    fn sources(rules: &str) -> Sources {
        Sources { rules: vec![("rules.lua".into(), rules.into())], ..Sources::default() }
    }

    const OLD: &str = r#"
        agents.define { id = "ada" }
        agents.define { id = "bob" }
        queues.define { id = "sales", agents = { "ada", "bob" }, policy = "round_robin", options = { timeout = "30s" } }
        queues.define { id = "spare", agents = { "bob" }, policy = "round_robin" }
    "#;
    /// Different in every way `install` acts on: a new agent, memberships, queue order, a
    /// queue gone (with no conversations) and one added.
    const NEW: &str = r#"
        agents.define { id = "cyd" }
        agents.define { id = "bob" }
        agents.define { id = "ada" }
        queues.define { id = "extra", agents = { "cyd" }, policy = "round_robin" }
        queues.define { id = "sales", agents = { "cyd", "bob" }, policy = "longest_idle" }
    "#;

    /// Everything a reader can see of the engine, as the API shows it.
    fn seen(e: &Engine) -> serde_json::Value {
        let conversations: Vec<_> =
            ["c1", "c2", "c3"].iter().map(|id| crate::views::conversation(e, e.conversation(id).unwrap())).collect();
        let agents: Vec<_> = e.agents().iter().map(|a| crate::views::agent(e, a)).collect();
        let queues: Vec<_> = e.queues.iter().map(|q| crate::views::queue(e, &q.id)).collect();
        serde_json::json!({
            "agents": agents, "queues": queues, "conversations": conversations,
            "timers": e.timers(), "generation": e.generation(),
        })
    }

    /// A reload that fails at its last stage, while the new VM's view is built (here: the VM
    /// runs out of memory), leaves everything as it was and the old rules deciding.
    #[test]
    fn a_reload_failing_late_leaves_everything_as_it_was() {
        let clock = Arc::new(VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-03-02T09:00:00Z").unwrap()));
        let mut e = Engine::from_sources(EngineConfig::new("scripts"), sources(OLD), clock, Vec::new()).unwrap();
        for agent in ["ada", "bob"] {
            e.handle(Input::SetStatus { agent: agent.into(), status: "callcenter".into() }).unwrap();
        }
        e.handle(Input::SignIn { agent: "ada".into() }).unwrap();
        for id in ["c1", "c2", "c3"] {
            let new = NewConversation { id: id.into(), queue: "sales".into(), ..Default::default() };
            e.handle(Input::Arrive(Box::new(new))).unwrap();
        }
        let before = seen(&e);
        assert_eq!(before["conversations"][0]["status"], "offered", "{before}");

        let loaded = script::Loaded::load(sources(NEW), &e.config.limits, &Default::default()).unwrap();
        loaded.scripts.starve();
        let refused = e.reload_loaded(loaded).unwrap_err();
        assert!(refused.to_string().contains("could not build the Lua view"), "{refused}");
        assert_eq!(seen(&e), before, "a failed reload changed what the engine holds");

        // The old rules still decide: bob signs in and round_robin offers him c2.
        e.handle(Input::SignIn { agent: "bob".into() }).unwrap();
        let c2 = serde_json::json!(crate::views::conversation(&e, e.conversation("c2").unwrap()));
        assert_eq!(
            (c2["status"].as_str(), c2["attempts"][0]["agent"].as_str()),
            (Some("offered"), Some("bob")),
            "{c2}"
        );
        assert_eq!(e.reload_sources(sources(NEW)).unwrap().0, 2, "the same rules load once memory allows");
    }
}
