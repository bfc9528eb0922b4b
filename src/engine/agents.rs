//! Agents' definitions, status, state, presence and availability, and the Lua view of them.

use super::*;
use crate::directory;
use crate::rules::{AgentDef, DEFAULT_UNIT};
use crate::unit;

/// The engine's agents: each by index (stable for the engine's life) and by key, the ids traces
/// show, the directory's records laid over the scripts' definitions, and which agents changed
/// since the Lua view last saw them. Indexing it gives the agent of an index.
/// A snapshot keeps what cannot be worked out again; [`Agents::reindex`] does the rest.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Agents {
    list: Vec<Agent>,
    #[serde(skip)]
    by_key: FxHashMap<Arc<str>, AgentIx>,
    /// The organization units other than the default one that have agents.
    #[serde(skip)]
    units: BTreeSet<String>,
    /// Every agent's shown id by index, shared with the traces.
    #[serde(skip)]
    names: AgentNames,
    /// Agents' records as the API gave them, by agent key.
    records: BTreeMap<String, AgentRecord>,
    /// Agents changed since the last flush into the Lua view, in the order they changed.
    dirty: Vec<AgentIx>,
    /// Per agent: whether it is in `dirty`, and whether only its load grew since (so it has no
    /// more room than before, and its queues need no other look).
    is_dirty: Vec<Dirty>,
    /// Per agent, the engine epoch at which it last became able to take work.
    epochs: Vec<u64>,
}

/// How an agent changed since the last flush (ordered: a full change outranks a load one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
enum Dirty {
    Clean,
    Loaded,
    Changed,
}

impl std::ops::Deref for Agents {
    type Target = [Agent];
    fn deref(&self) -> &[Agent] {
        &self.list
    }
}

impl std::ops::DerefMut for Agents {
    fn deref_mut(&mut self) -> &mut [Agent] {
        &mut self.list
    }
}

impl Agents {
    /// The agent a key names, or an id that exactly one unit has (see [`Agents::resolve`]).
    pub(super) fn index(&self, id: &str) -> Result<AgentIx, InputError> {
        match self.by_key.get(id) {
            Some(&ix) => Ok(ix),
            None if self.units.is_empty() => Err(InputError::UnknownAgent(id.into())),
            None => Ok(self.by_key[&self.resolve(id, |_| true)?]),
        }
    }

    /// The agent a key names exactly.
    pub(super) fn keyed(&self, key: &str) -> Option<AgentIx> {
        self.by_key.get(key).copied()
    }

    /// The agent `given` names, as the engine keys it, among the units `allowed` lets through:
    /// `given` is a key, or the id of an agent in exactly one such unit.
    pub(super) fn resolve(&self, given: &str, allowed: impl Fn(&str) -> bool) -> Result<Arc<str>, InputError> {
        let unit_of = |key: &str| self.by_key.get(key).map(|&ix| self.list[ix as usize].def.unit.as_str());
        match unit::resolve(given, self.units.iter().map(String::as_str), allowed, unit_of) {
            unit::Resolved::Found(key) => Ok(key),
            unit::Resolved::Unknown => Err(InputError::UnknownAgent(unit::external(given).to_string())),
            unit::Resolved::Ambiguous(units) => Err(InputError::AmbiguousAgent {
                id: given.to_string(),
                units: units.into_iter().map(str::to_string).collect(),
            }),
        }
    }

    /// The agent `id` of `unit` (an id with a conversation, say), or the agent a key of `unit` names.
    /// Another unit's agent, even named by key, is unknown here.
    pub(super) fn of_unit(&self, unit: &str, id: &str) -> Result<AgentIx, InputError> {
        let key = match unit::is_key(id) {
            false => unit::key(unit, id),
            true if unit::split(id).0 == unit => Arc::from(id),
            true => return Err(InputError::UnknownAgent(unit::external(id).into())),
        };
        self.keyed(&key).ok_or_else(|| InputError::UnknownAgent(unit::external(id).into()))
    }

    /// Rebuilds the lookups by key, by unit and of shown ids from the list (after a snapshot
    /// was read).
    pub(super) fn reindex(&mut self) {
        let list = std::mem::take(&mut self.list);
        self.by_key.clear();
        self.units.clear();
        self.names = AgentNames::default();
        for agent in &list {
            self.by_key.insert(agent.id.clone(), agent.ix);
            if agent.def.unit != DEFAULT_UNIT {
                self.units.insert(agent.def.unit.clone());
            }
            self.names.push(Self::shown(agent));
        }
        self.list = list;
    }

    /// The id traces show for an agent: in the default unit the key is the id.
    fn shown(agent: &Agent) -> Arc<str> {
        match unit::is_key(&agent.id) {
            true => Arc::from(agent.def.id.as_str()),
            false => agent.id.clone(),
        }
    }

    /// Every agent's shown id by index, as traces keep them.
    pub(super) fn names(&self) -> &AgentNames {
        &self.names
    }

    /// Every agent's definition: the scripts' ones in their order, then agents only the
    /// directory knows; directory records (by agent key) laid over both.
    pub(super) fn defs(&self, rules: &RuleSet) -> Vec<AgentDef> {
        let scripted: std::collections::HashSet<Arc<str>> =
            rules.agents.iter().map(|d| unit::key(&d.unit, &d.id)).collect();
        let mut defs: Vec<AgentDef> = rules
            .agents
            .iter()
            .map(|d| match self.records.get(&*unit::key(&d.unit, &d.id)) {
                Some(r) => r.apply(d.clone()),
                None => d.clone(),
            })
            .collect();
        defs.extend(
            self.records
                .iter()
                .filter(|(key, _)| !scripted.contains(key.as_str()))
                .map(|(key, r)| r.apply(directory::bare(key))),
        );
        // The team's capacity under the agent's own, once here rather than at every offer.
        for def in &mut defs {
            if let Some(team) = def.team.as_ref().and_then(|t| rules.teams.get(t)) {
                def.capacity = team.capacity.overlaid(&def.capacity);
            }
        }
        defs
    }

    /// Gives agents their current definitions, adding the new ones at the end; returns the new ones.
    pub(super) fn place(&mut self, defs: Vec<AgentDef>, now: Timestamp) -> Vec<AgentIx> {
        let mut added = Vec::new();
        for def in defs {
            match self.by_key.get(&*unit::key(&def.unit, &def.id)) {
                Some(&ix) => self.list[ix as usize].def = def,
                None => {
                    if def.unit != DEFAULT_UNIT && !self.units.contains(&def.unit) {
                        self.units.insert(def.unit.clone());
                    }
                    let ix = self.list.len() as AgentIx;
                    let agent = Agent::new(ix, def, now);
                    self.by_key.insert(agent.id.clone(), ix);
                    self.names.push(Self::shown(&agent));
                    self.list.push(agent);
                    self.is_dirty.push(Dirty::Clean);
                    self.epochs.push(0);
                    added.push(ix);
                }
            }
        }
        added
    }

    /// The agents of the directory who joined queues through their records, in index order.
    fn joined(&self) -> Vec<(AgentIx, &[String])> {
        let mut joined: Vec<(AgentIx, &[String])> =
            self.records.iter().filter_map(|(key, r)| Some((self.keyed(key)?, r.queues.as_deref()?))).collect();
        joined.sort_unstable_by_key(|&(ix, _)| ix);
        joined
    }

    /// The members of each queue of `rules`: the agents its script lists, in that order, then
    /// the directory's agents who joined it, in the order they were created.
    pub(super) fn memberships(&self, rules: &RuleSet) -> Vec<Vec<AgentIx>> {
        let joined = self.joined();
        rules
            .queues
            .iter()
            .map(|q| {
                let mut members: Vec<AgentIx> = q.agents.iter().map(|a| self.by_key[&unit::key(&q.unit, a)]).collect();
                for &(ix, queues) in &joined {
                    // A reload may have moved the queue to another unit; the agent stays out then.
                    let fits = self.list[ix as usize].def.unit == q.unit && queues.contains(&q.id);
                    if fits && !members.contains(&ix) {
                        members.push(ix);
                    }
                }
                // Tiers: the first level first, each in the order written.
                if !q.levels.is_empty() {
                    members.sort_by_key(|&ix| q.level(&self.list[ix as usize].def.id));
                }
                members
            })
            .collect()
    }

    /// The record of agent `key`, created empty if it has none.
    pub(super) fn record(&mut self, key: &str) -> &mut AgentRecord {
        self.records.entry(key.to_string()).or_default()
    }

    /// Notes that agent `ix` changed, for the next flush into the Lua view.
    pub(super) fn mark(&mut self, ix: AgentIx) {
        self.note(ix, Dirty::Changed);
    }

    /// Notes that agent `ix` took on load (a shared offer, an accept, a wrap-up that keeps
    /// its slot): the Lua view must show it, but nothing waiting could get the agent now that
    /// it could not get before, so no queue is asked again on its account.
    pub(super) fn mark_loaded(&mut self, ix: AgentIx) {
        self.note(ix, Dirty::Loaded);
    }

    fn note(&mut self, ix: AgentIx, how: Dirty) {
        let was = self.is_dirty[ix as usize];
        if was == Dirty::Clean {
            self.dirty.push(ix);
        }
        self.is_dirty[ix as usize] = was.max(how);
    }

    /// The agents changed since the last call, in the order they changed, each with whether
    /// more than its load changed.
    pub(super) fn take_dirty(&mut self) -> Vec<(AgentIx, bool)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|ix| (ix, std::mem::replace(&mut self.is_dirty[ix as usize], Dirty::Clean) == Dirty::Changed))
            .collect()
    }

    /// The epoch at which agent `ix` last became able to take work.
    pub(super) fn epoch(&self, ix: AgentIx) -> u64 {
        self.epochs[ix as usize]
    }

    pub(super) fn set_epoch(&mut self, ix: AgentIx, epoch: u64) {
        self.epochs[ix as usize] = epoch;
    }
}

impl Engine {
    /// Adds agent `id` of the record's unit; agent ids live per unit, so only that unit's
    /// agents can be in the way.
    pub(super) fn create_agent(&mut self, id: String, record: AgentRecord) -> Result<(), InputError> {
        if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/') {
            let message = format!("agent id `{id}` must be non-empty, without spaces or slashes");
            return Err(InputError::Invalid { field: "id", message });
        }
        let unit = record.unit.as_deref().unwrap_or(DEFAULT_UNIT);
        let key = unit::key(unit, &id);
        if self.agents.keyed(&key).is_some() {
            return Err(InputError::DuplicateAgent(id));
        }
        record.validate(&self.rules, unit)?;
        *self.agents.record(&key) = record;
        self.refresh_directory();
        Ok(())
    }

    pub(super) fn update_agent(&mut self, id: &str, record: AgentRecord) -> Result<(), InputError> {
        let ix = self.agents.index(id)?;
        let unit = self.agents[ix as usize].def.unit.clone();
        if record.unit.as_ref().is_some_and(|u| *u != unit) {
            let id = unit::external(id);
            let message = format!("agent `{id}` belongs to unit `{unit}`; an agent's unit cannot change");
            return Err(InputError::Invalid { field: "unit", message });
        }
        record.validate(&self.rules, &unit)?;
        let key = self.agents[ix as usize].id.clone();
        self.agents.record(&key).merge(record);
        self.refresh_directory();
        Ok(())
    }

    /// Brings agents, queue members and the Lua view in line with the directory, in place.
    fn refresh_directory(&mut self) {
        let before: Vec<AgentDef> = self.agents.iter().map(|a| a.def.clone()).collect();
        let now = self.now();
        let added = self.agents.place(self.agents.defs(&self.rules), now);
        let track = self.rules.settings.track_work_day;
        let mut failed = Vec::new();
        // The roster takes new definitions (skills, capacity) and new agents before the
        // memberships below: a queue's roster is made from the agents as they are now.
        for (ix, old) in before.iter().enumerate() {
            let a = &self.agents[ix];
            if a.def != *old {
                failed.extend(self.scripts.set_agent_def(a).err());
                self.roster.sync(a);
                self.emit(Update::AgentDefined { agent: a.id.clone(), created: false });
            }
        }
        for ix in added {
            let a = &self.agents[ix as usize];
            failed.extend(self.scripts.add_agent(a, track).err());
            self.roster.sync(a);
            self.emit(Update::AgentDefined { agent: a.id.clone(), created: true });
        }
        let members = self.agents.memberships(&self.rules);
        for (q, members) in members.into_iter().enumerate() {
            if self.queues[q].members == members {
                continue;
            }
            for a in self.agents.iter_mut() {
                a.queues.retain(|&x| x != q as u32);
            }
            for &m in &members {
                let queues = &mut self.agents[m as usize].queues;
                queues.push(q as u32);
                queues.sort_unstable();
            }
            failed.extend(self.scripts.set_members(q, &members).err());
            let def = &self.rules.queues[q];
            self.roster.set_queue(q, def.statuses, def.allowed, &members, &self.agents);
            self.queues[q].members = members;
            self.epoch += 1;
            self.queues[q].epoch = self.epoch;
            self.reevaluate.insert(q as u32);
        }
        for e in failed {
            self.emit(Update::Log { level: "error", message: format!("Lua view of the directory not updated: {e}") });
        }
    }

    pub(super) fn team(&self, ix: AgentIx) -> &TeamDef {
        static NONE: std::sync::OnceLock<TeamDef> = std::sync::OnceLock::new();
        self.agents[ix as usize]
            .def
            .team
            .as_ref()
            .and_then(|t| self.rules.teams.get(t))
            .unwrap_or_else(|| NONE.get_or_init(TeamDef::none))
    }

    pub(super) fn with_agent(&mut self, ix: AgentIx, change: impl FnOnce(&mut Agent)) {
        change(&mut self.agents[ix as usize]);
        self.agents.mark(ix);
    }

    /// Writes changed agents into the Lua view; agents who can now take work make their
    /// queues worth another look.
    pub(super) fn flush_view(&mut self) {
        let track = self.rules.settings.track_work_day;
        let now = self.now;
        for (ix, changed) in self.agents.take_dirty() {
            let a = &mut self.agents[ix as usize];
            let able = a.can_work(track);
            if a.able && !able {
                a.away += 1;
            }
            // Idle time counts from when the agent could take work (signed in, back from a
            // pause or wrap-up), not from when the engine started or the agent was defined.
            if !a.able && able {
                a.idle_since = now;
            }
            a.able = able;
            let a = &self.agents[ix as usize];
            self.scripts.sync_agent(a, track);
            self.roster.sync(a);
            let mut bumped = false;
            // An agent whose every slot is taken has nothing to offer (a chat that ends frees one),
            // and one who only took on load has no more than before.
            let room = changed && a.has_room();
            for &q in &a.queues {
                if room && a.blocked_for(self.rules.queues[q as usize].statuses).is_none() {
                    if !bumped {
                        self.epoch += 1;
                        bumped = true;
                    }
                    self.queues[q as usize].epoch = self.epoch;
                    self.reevaluate.insert(q);
                }
            }
            if bumped {
                self.agents.set_epoch(ix, self.epoch);
            }
        }
    }

    /// Every queue's roster built anew from the agents and the rules.
    pub(super) fn rebuild_roster(&mut self) {
        let queues = self.rules.queues.iter().zip(&self.queues).map(|(d, q)| (d.statuses, d.allowed, &q.members[..]));
        self.roster = Roster::new(&self.agents, queues, self.rules.settings.track_work_day);
    }

    /// Why agent `ix` cannot be offered a conversation of queue `q` and `channel` right now
    /// (status, state, presence, capacity); `None` if it can.
    #[inline]
    pub(super) fn unable_for(&self, ix: AgentIx, q: u32, channel: &str) -> Option<&'static str> {
        let def = &self.rules.queues[q as usize];
        self.agents[ix as usize].blocked_on(def.statuses, def.allowed, channel)
    }

    pub(super) fn set_state(&mut self, ix: AgentIx, state: State) {
        let now = self.now();
        let a = &mut self.agents[ix as usize];
        if a.state != state && matches!(a.state, State::PostProcessing | State::Missed) {
            // Leaving wrap-up or no-answer delay early: that state's timer no longer applies.
            self.timers.cancel(a.state_timer.take());
        }
        a.set_state(state, now);
        let update = Update::AgentState {
            agent: a.id.clone(),
            status: a.status.as_str(),
            state: a.state.as_str(),
            pause_cause: a.pause_cause.clone(),
        };
        self.agents.mark(ix);
        self.emit(update);
    }

    pub(super) fn set_status(&mut self, ix: AgentIx, status: AgentStatus) {
        let a = &self.agents[ix as usize];
        if a.status == status {
            return;
        }
        self.agents[ix as usize].status = status;
        // After the status changed, so the decision that follows sees it.
        self.withdraw_offers(ix, status.reason(), |q| !q.statuses.contains(status));
        let a = &mut self.agents[ix as usize];
        let state = match (a.conversation.is_some(), a.state) {
            (true, s) => s,
            (false, State::Paused) => State::Paused,
            (false, _) => State::Waiting,
        };
        self.set_state(ix, state);
    }

    pub(super) fn set_presence(&mut self, ix: AgentIx, presence: &str) {
        let Some(p) = self.rules.presences.get(presence) else {
            return;
        };
        let (id, text, base) = (p.id.clone(), p.text.clone(), p.base);
        let a = &mut self.agents[ix as usize];
        if a.presence == id {
            return;
        }
        a.presence = id.clone();
        a.base = base;
        let update = Update::AgentPresence { agent: a.id.clone(), presence: id, text, base: base.as_str() };
        self.agents.mark(ix);
        self.emit(update);
        // A presence the offering queue does not route to hands the offer on at once.
        if base == BaseStatus::Offline {
            self.withdraw_offer_from(ix, "presence_offline");
        } else {
            self.withdraw_offers(ix, "presence_not_allowed", |q| !q.allowed.contains(base));
        }
    }

    pub(super) fn pause(&mut self, agent: &str, cause: &str) -> Result<(), InputError> {
        let ix = self.agents.index(agent)?;
        if !self.rules.pause_causes.contains_key(cause) {
            return Err(InputError::UnknownPauseCause(cause.into()));
        }
        let a = &self.agents[ix as usize];
        if a.status != AgentStatus::Callcenter {
            return Err(InputError::Illegal(format!(
                "agent `{}` is not in callcenter status (status {})",
                a.def.id,
                a.status.as_str()
            )));
        }
        if a.state == State::Busy {
            return Err(InputError::Illegal(format!(
                "agent `{}` is busy with conversation `{}`; pause after closing it",
                a.def.id,
                a.conversation.as_deref().map_or("?", unit::external)
            )));
        }
        if a.state == State::PostProcessing {
            self.wrap_up_ended(ix);
        }
        // Paused first: the conversations the pause takes back must not come straight back.
        self.agents[ix as usize].pause_cause = Some(cause.into());
        self.set_state(ix, State::Paused);
        self.withdraw_offer_from(ix, "state_paused");
        Ok(())
    }

    /// Applies a change to an availability input (work day, dismissal, vacation) and reports
    /// the agent's availability if it changed. An agent who becomes unavailable while an
    /// offer rings for them loses it at once, like signing out, with the reason.
    pub(super) fn set_availability(&mut self, ix: AgentIx, change: impl FnOnce(&mut Agent)) {
        let track = self.rules.settings.track_work_day;
        let before = self.agents[ix as usize].unavailable(track);
        self.with_agent(ix, change);
        let a = &self.agents[ix as usize];
        let after = a.unavailable(track);
        if before != after {
            let update = Update::AgentAvailability { agent: a.id.clone(), unavailable: after };
            self.emit(update);
            if let Some(reason) = after {
                self.withdraw_offer_from(ix, reason);
            }
        }
    }

    /// Recomputes "on vacation now" and schedules the next edge of a vacation period.
    pub(super) fn refresh_vacation(&mut self, ix: AgentIx) {
        let now = self.now();
        let (on, next) = self.agents[ix as usize].vacation_at(now);
        let old = self.agents[ix as usize].vacation_timer.take();
        self.timers.cancel(old);
        let timer = next.map(|t| self.timers.schedule(t, TimerKind::Vacation { agent: ix }));
        self.agents[ix as usize].vacation_timer = timer;
        self.set_availability(ix, |a| a.on_vacation = on);
    }

    pub(super) fn emit(&mut self, update: Update) {
        self.watch(&update);
        self.updates.push(Stamped { at: self.now, update });
    }
}
