//! Each queue's roster: which members can take work now and why the others cannot, kept up to
//! date as agents change, with the orders policies ask for most (queue order, longest idle,
//! fewest answered, least talk time, skill level), so a decision looks at the members it
//! needs instead of every member of the queue.
//!
//! A member is *fit* when the queue routes their status, they are Waiting, the queue allows
//! their presence and they are available by the open-line criteria (not dismissed, not on
//! vacation, work day started or online). Whether they have room for one more conversation of
//! a given channel, and the skills a conversation requires, are checked as a policy walks the
//! roster ([`Roster::unfit_for`]), since they depend on the conversation.
//!
//! The sorted orders are built the first time a policy of the queue asks for them and kept
//! from then on, so a queue pays only for the orders its policy uses.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::agent::{Agent, AgentIx, AgentNames, StatusSet};
use crate::capacity::Limit;
use crate::decision::{Reason, Skipped};
use crate::presence::BaseSet;

/// The host's reasons a member cannot take work, by code; code 0 is "fit". The first
/// [`BLOCKED`] are the queue's own (status, state, presence), the rest availability.
const REASONS: [&str; 14] = [
    "",
    "status_dnd",
    "status_ready",
    "status_callcenter",
    "state_offered",
    "state_busy",
    "state_post_processing",
    "state_missed",
    "state_paused",
    "presence_not_allowed",
    "dismissed",
    "on_vacation",
    "work_day_not_started",
    "offline",
];
/// Codes below this are blocked by the queue (or fit, 0); from it on, unavailable.
const BLOCKED: u8 = 10;

fn code(reason: Option<&'static str>) -> u8 {
    match reason {
        None => 0,
        Some(r) => REASONS.iter().position(|x| *x == r).expect("a host reason") as u8,
    }
}

/// An order a policy walks a queue's fit members in. Ties go to the member listed first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// Queue order.
    Queue,
    /// Longest idle first (earliest `idle_since`).
    Idle,
    /// Fewest answered conversations first.
    Answered,
    /// Least talk time first.
    TalkTime,
    /// Members with this skill, highest level first; members without it are left out.
    Skill(Arc<str>),
}

impl Order {
    /// The order a policy names: `queue`, `idle`, `answered`, `talk_time`.
    pub fn named(name: &str) -> Option<Order> {
        Some(match name {
            "queue" => Order::Queue,
            "idle" => Order::Idle,
            "answered" => Order::Answered,
            "talk_time" => Order::TalkTime,
            _ => return None,
        })
    }

    pub const NAMES: &'static str = "queue, idle, answered, talk_time";
}

/// Where a walk over a roster stands: the last member it gave, by position in the queue's
/// list, and that member's key in the order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    last: Option<(i64, u32)>,
}

/// What one decision's walks over a roster found: whether there were any (then the trace
/// counts the unavailable members the walks left out), and the fit members they passed over
/// for want of room or skills, by position.
#[derive(Clone, Debug, Default)]
pub struct Walked {
    pub used: bool,
    passed: Vec<(u32, &'static str)>,
}

impl Walked {
    /// Notes a member passed over. Several walks of one decision may pass the same member: the
    /// list is folded down to one entry each before it outgrows the queue (`members`).
    pub fn pass(&mut self, pos: u32, why: &'static str, members: usize) {
        self.passed.push((pos, why));
        if self.passed.len() > 2 * members + 64 {
            self.fold();
        }
    }

    fn fold(&mut self) {
        self.passed.sort_unstable_by_key(|(pos, _)| *pos);
        self.passed.dedup_by_key(|(pos, _)| *pos);
    }

    /// The members passed over, each once, in queue order.
    pub fn passed(&mut self) -> &[(u32, &'static str)] {
        self.fold();
        &self.passed
    }
}

/// What the roster keeps of one agent: the keys of its orders and its room for more work.
#[derive(Clone, Debug, Default, PartialEq)]
struct Keys {
    idle: i64,
    answered: u32,
    talk: i64,
    skills: Vec<(Arc<str>, f64)>,
    /// Whether the agent holds anything on a shared channel (which rules out exclusive work).
    holds: bool,
    /// Per shared channel of the agent's capacity: its limit and the agent's load on it.
    shared: Vec<(Arc<str>, u32, u32)>,
    unavailable: Option<&'static str>,
}

impl Keys {
    fn of(a: &Agent, track_work_day: bool) -> Keys {
        Keys {
            idle: a.idle_since.0,
            answered: a.counters.answered,
            talk: a.counters.talk_time.0,
            skills: a.def.skills.iter().map(|(s, l)| (Arc::from(s.as_str()), *l)).collect(),
            holds: !a.slots.is_empty(),
            shared: a
                .def
                .capacity
                .iter()
                .filter_map(|(c, l)| match l {
                    Limit::Shared(n) => Some((Arc::from(c), n, a.load(c))),
                    Limit::Exclusive => None,
                })
                .collect(),
            unavailable: a.unavailable(track_work_day),
        }
    }

    /// Cheap to compare before anything is allocated: whether `a` still has these keys.
    fn same(&self, a: &Agent, track_work_day: bool) -> bool {
        self.idle == a.idle_since.0
            && self.answered == a.counters.answered
            && self.talk == a.counters.talk_time.0
            && self.holds != a.slots.is_empty()
            && self.unavailable == a.unavailable(track_work_day)
            && self.skills.len() == a.def.skills.len()
            && self.skills.iter().zip(&a.def.skills).all(|((s, l), (t, m))| **s == **t && l == m)
            && self.shared.iter().all(|(c, n, load)| a.def.capacity.limit(c) == Limit::Shared(*n) && a.load(c) == *load)
            && a.def.capacity.iter().filter(|(_, l)| matches!(l, Limit::Shared(_))).count() == self.shared.len()
    }

    /// Whether some channel may have no room for the agent (see `QueueRoster::tight`).
    fn tight(&self) -> bool {
        self.holds || self.shared.iter().any(|(_, n, _)| *n == 0)
    }

    /// The agent's key in a sorted order; `None` when the order leaves the agent out.
    fn key(&self, order: &Order) -> Option<i64> {
        match order {
            Order::Queue => Some(0),
            Order::Idle => Some(self.idle),
            Order::Answered => Some(self.answered.into()),
            Order::TalkTime => Some(self.talk),
            Order::Skill(s) => self.skills.iter().find(|(k, _)| k == s).map(|(_, l)| !ordered(*l)),
        }
    }
}

/// An `f64` as an `i64` that sorts the same way (levels are numbers a script wrote).
fn ordered(f: f64) -> i64 {
    let bits = f.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// A set of positions in a queue's list.
#[derive(Clone, Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    fn set(&mut self, i: u32, on: bool) {
        let (w, b) = (i as usize / 64, i % 64);
        if on {
            self.0[w] |= 1 << b;
        } else {
            self.0[w] &= !(1 << b);
        }
    }

    /// The first position at or after `from` that is in the set (`want`) or not (`!want`),
    /// below `len`.
    fn next(&self, from: u32, want: bool, len: u32) -> Option<u32> {
        let mut w = from as usize / 64;
        let flip = if want { 0 } else { u64::MAX };
        let mut word = (self.0.get(w)? ^ flip) & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                let i = (w * 64) as u32 + word.trailing_zeros();
                return (i < len).then_some(i);
            }
            w += 1;
            word = self.0.get(w)? ^ flip;
        }
    }
}

/// One queue's roster.
#[derive(Clone, Debug, Default)]
struct QueueRoster {
    statuses: StatusSet,
    allowed: BaseSet,
    members: Vec<AgentIx>,
    position: FxHashMap<AgentIx, u32>,
    /// Each member's reason code, by position (0: fit).
    codes: Vec<u8>,
    /// How many members have each code.
    counts: [u32; REASONS.len()],
    /// Members the queue itself does not block (fit or only unavailable).
    open: Bits,
    fit: Bits,
    /// Open members who may lack room for some channel: they hold work on a shared channel,
    /// or have a channel they take none of. Everyone else has room for anything.
    tight: Bits,
    /// The sorted orders asked for so far: (key, position) of every fit member with a key.
    /// Built on first use by a walk, which only reads the roster otherwise.
    sorted: RefCell<FxHashMap<Order, BTreeSet<(i64, u32)>>>,
}

/// Every queue's roster (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Roster {
    track_work_day: bool,
    keys: Vec<Keys>,
    queues: Vec<QueueRoster>,
    /// Every skill some agent has, so asking for an unknown one builds nothing.
    skills: FxHashMap<Arc<str>, u32>,
}

impl Roster {
    /// The rosters of `queues` (each its statuses, allowed presences and members in order).
    pub fn new<'a>(
        agents: &[Agent],
        queues: impl IntoIterator<Item = (StatusSet, BaseSet, &'a [AgentIx])>,
        track_work_day: bool,
    ) -> Roster {
        let mut r = Roster { track_work_day, ..Roster::default() };
        for a in agents {
            r.add_agent(a);
        }
        for (i, (statuses, allowed, members)) in queues.into_iter().enumerate() {
            r.queues.push(QueueRoster::default());
            r.set_queue(i, statuses, allowed, members, agents);
        }
        r
    }

    fn add_agent(&mut self, a: &Agent) {
        let keys = Keys::of(a, self.track_work_day);
        for (s, _) in &keys.skills {
            *self.skills.entry(s.clone()).or_default() += 1;
        }
        // Agents come in index order; one skipped over gets empty keys until it is synced.
        let i = a.ix as usize;
        if self.keys.len() <= i {
            self.keys.resize(i + 1, Keys::default());
        }
        self.keys[i] = keys;
    }

    /// Sets queue `q`'s members (and what it routes) anew.
    pub fn set_queue(
        &mut self,
        q: usize,
        statuses: StatusSet,
        allowed: BaseSet,
        members: &[AgentIx],
        agents: &[Agent],
    ) {
        for a in &agents[self.keys.len()..] {
            self.add_agent(a);
        }
        let mut qr = QueueRoster {
            statuses,
            allowed,
            members: members.to_vec(),
            codes: vec![0; members.len()],
            open: Bits::with_len(members.len()),
            fit: Bits::with_len(members.len()),
            tight: Bits::with_len(members.len()),
            ..QueueRoster::default()
        };
        for (pos, &ix) in members.iter().enumerate() {
            qr.position.entry(ix).or_insert(pos as u32);
            let code = Self::code_of(&agents[ix as usize], &qr, self.track_work_day);
            qr.put(pos as u32, code, self.keys[ix as usize].tight());
        }
        self.queues[q] = qr;
    }

    fn code_of(a: &Agent, q: &QueueRoster, track_work_day: bool) -> u8 {
        match a.blocked_in(q.statuses, q.allowed) {
            Some(why) => code(Some(why)),
            None => code(a.unavailable(track_work_day)),
        }
    }

    /// Brings the roster in line with agent `a` after it changed (state, status, presence,
    /// availability, counters, load, definition).
    pub fn sync(&mut self, a: &Agent) {
        if a.ix as usize >= self.keys.len() {
            self.add_agent(a);
        }
        let ix = a.ix;
        let same = self.keys[ix as usize].same(a, self.track_work_day);
        let keys = if same { None } else { Some(Keys::of(a, self.track_work_day)) };
        let old = &self.keys[ix as usize];
        for &q in &a.queues {
            let qr = &mut self.queues[q as usize];
            let Some(&pos) = qr.position.get(&ix) else { continue };
            let was = qr.codes[pos as usize];
            let now = Self::code_of(a, qr, self.track_work_day);
            if was == now && same {
                continue;
            }
            let new = keys.as_ref().unwrap_or(old);
            for (order, set) in qr.sorted.get_mut().iter_mut() {
                if was == 0 {
                    if let Some(k) = old.key(order) {
                        set.remove(&(k, pos));
                    }
                }
                if now == 0 {
                    if let Some(k) = new.key(order) {
                        set.insert((k, pos));
                    }
                }
            }
            qr.counts[was as usize] -= 1;
            qr.put(pos, now, new.tight());
        }
        if let Some(keys) = keys {
            for (s, _) in &self.keys[ix as usize].skills {
                if let Some(n) = self.skills.get_mut(s) {
                    *n -= 1;
                }
            }
            for (s, _) in &keys.skills {
                *self.skills.entry(s.clone()).or_default() += 1;
            }
            self.skills.retain(|_, n| *n > 0);
            self.keys[ix as usize] = keys;
        }
    }

    /// Agent `ix`'s position in queue `q`'s list (its first, if listed twice).
    pub fn position(&self, q: u32, ix: AgentIx) -> Option<u32> {
        self.queues[q as usize].position.get(&ix).copied()
    }

    /// Queue `q`'s members in order.
    pub fn members(&self, q: u32) -> &[AgentIx] {
        &self.queues[q as usize].members
    }

    /// Why the member at `pos` of queue `q` cannot take work, by the queue's rules
    /// (status, state, presence) or, with `availability`, by the open-line criteria too.
    pub fn reason(&self, q: u32, pos: u32, availability: bool) -> Option<&'static str> {
        let c = self.queues[q as usize].codes[pos as usize];
        (c != 0 && (availability || c < BLOCKED)).then(|| REASONS[c as usize])
    }

    /// How many members of queue `q` cannot take work for each host reason (the queue's rules,
    /// and with `availability` the open-line criteria), reasons in a fixed order.
    pub fn counts(&self, q: u32, availability: bool) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        let counts = &self.queues[q as usize].counts;
        let end = if availability { REASONS.len() } else { BLOCKED as usize };
        (1..end).filter(move |&c| counts[c] > 0).map(move |c| (REASONS[c], counts[c]))
    }

    /// The first member at or after `from` that cannot take work (as [`Roster::reason`]).
    pub fn next_unable(&self, q: u32, from: u32, availability: bool) -> Option<u32> {
        let qr = &self.queues[q as usize];
        let set = if availability { &qr.fit } else { &qr.open };
        set.next(from, false, qr.members.len() as u32)
    }

    /// The members of queue `q` the queue does not block (fit or only unavailable), in order.
    pub fn open(&self, q: u32) -> impl Iterator<Item = AgentIx> + '_ {
        let qr = &self.queues[q as usize];
        let len = qr.members.len() as u32;
        std::iter::successors(qr.open.next(0, true, len), move |&p| qr.open.next(p + 1, true, len))
            .map(|p| qr.members[p as usize])
    }

    /// The first member at or after `from` the queue does not block (fit or only unavailable)
    /// who may lack room for a conversation of some channel ([`Roster::unfit_for`]); the
    /// members passed over have room for anything.
    pub fn next_tight(&self, q: u32, from: u32) -> Option<u32> {
        let qr = &self.queues[q as usize];
        qr.tight.next(from, true, qr.members.len() as u32)
    }

    /// Why agent `ix` has no room for one more conversation of `channel` or lacks one of the
    /// skills `requires` asks for (at least that level), or `None`. Mirrors the Lua view's
    /// `candidates.full` and `skills.missing`.
    pub fn unfit_for(&self, ix: AgentIx, channel: &str, requires: &BTreeMap<String, f64>) -> Option<&'static str> {
        let k = &self.keys[ix as usize];
        let room = match k.shared.iter().find(|(c, _, _)| &**c == channel) {
            None => (!k.holds).then_some(()).ok_or("channel_busy"),
            Some((_, 0, _)) => Err("no_capacity"),
            Some((_, n, load)) => (load < n).then_some(()).ok_or("channel_full"),
        };
        if let Err(why) = room {
            return Some(why);
        }
        let lacks = |(skill, level): (&String, &f64)| !k.skills.iter().any(|(s, l)| **s == **skill && l >= level);
        requires.iter().any(lacks).then_some("missing_skill")
    }

    /// The next member of queue `q` in `order` after `cursor` who can take a conversation of
    /// `channel` needing `requires`, as a position in the queue's list; fit members without
    /// room or skills are passed over into `walked`. For queue order, `wrap_after` starts the
    /// walk after that position and goes round once.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        q: u32,
        order: &Order,
        cursor: &mut Cursor,
        wrap_after: Option<u32>,
        channel: &str,
        requires: &BTreeMap<String, f64>,
        walked: &mut Walked,
    ) -> Option<u32> {
        let members = &self.queues[q as usize].members;
        while let Some(pos) = self.next(q, order, cursor, wrap_after) {
            match self.unfit_for(members[pos as usize], channel, requires) {
                Some(why) => walked.pass(pos, why, members.len()),
                None => return Some(pos),
            }
        }
        None
    }

    /// The next fit member of queue `q` in `order` after `cursor`, as a position in the
    /// queue's list.
    fn next(&self, q: u32, order: &Order, cursor: &mut Cursor, wrap_after: Option<u32>) -> Option<u32> {
        if *order == Order::Queue {
            return self.next_in_queue_order(q, cursor, wrap_after);
        }
        if let Order::Skill(s) = order {
            if !self.skills.contains_key(s) {
                return None;
            }
        }
        let qr = &self.queues[q as usize];
        let mut sorted = qr.sorted.borrow_mut();
        let set = sorted.entry(order.clone()).or_insert_with(|| {
            let mut set = BTreeSet::new();
            let len = qr.members.len() as u32;
            let mut pos = qr.fit.next(0, true, len);
            while let Some(p) = pos {
                if let Some(k) = self.keys[qr.members[p as usize] as usize].key(order) {
                    set.insert((k, p));
                }
                pos = qr.fit.next(p + 1, true, len);
            }
            set
        });
        let next = match cursor.last {
            None => set.iter().next(),
            Some(last) => set.range((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded)).next(),
        }
        .copied();
        cursor.last = next;
        next.map(|(_, pos)| pos)
    }

    fn next_in_queue_order(&self, q: u32, cursor: &mut Cursor, wrap_after: Option<u32>) -> Option<u32> {
        let qr = &self.queues[q as usize];
        let len = qr.members.len() as u32;
        // The key counts the walk: 0 before the wrap point, 1 after it.
        let start = wrap_after.map_or(0, |p| p.saturating_add(1).min(len));
        let (lap, from) = match cursor.last {
            None => (0, start),
            Some((lap, pos)) => (lap, pos + 1),
        };
        let found = match lap {
            0 => qr
                .fit
                .next(from, true, len)
                .map(|p| (0, p))
                .or_else(|| (start > 0).then(|| qr.fit.next(0, true, start).map(|p| (1, p))).flatten()),
            _ => qr.fit.next(from, true, start).map(|p| (1, p)),
        };
        cursor.last = found.or(Some((2, len)));
        found.map(|(_, p)| p)
    }
}

impl Roster {
    /// What a decision's trace says about the members of queue `q` not `offered`: for each,
    /// the policy's own reason where it gave one (`by_policy`), else the host's, counted
    /// from the roster so tracing costs the same in a queue of 10 and of 10,000. The host
    /// counts every member the queue cannot offer work (status, state, presence); when the
    /// policy scanned the queue itself, every member without room on `channel`; when it
    /// walked the roster (`walked.used`), every unavailable member and those its walks
    /// passed over for want of room or skills. Members a walk never reached, and members a
    /// policy simply did not pick, are not listed. The first `named` are named, in queue
    /// order, then reasons the policy gave for agents outside the queue (its own business).
    #[allow(clippy::too_many_arguments)]
    pub fn skipped(
        &self,
        q: u32,
        channel: &str,
        offered: &[AgentIx],
        by_policy: Vec<(AgentIx, Reason)>,
        walked: &mut Walked,
        named: usize,
        names: AgentNames,
    ) -> Skipped {
        let members = &self.queues[q as usize].members;
        let availability = walked.used;
        // Members the queue does not block but who could not take this conversation.
        let no_requirements = BTreeMap::new();
        let extra: Vec<(u32, &'static str)> = if availability {
            walked.passed().to_vec()
        } else {
            let mut extra = Vec::new();
            let mut at = self.next_tight(q, 0);
            while let Some(pos) = at {
                if let Some(why) = self.unfit_for(members[pos as usize], channel, &no_requirements) {
                    extra.push((pos, why));
                }
                at = self.next_tight(q, pos + 1);
            }
            extra
        };
        // The policy's reasons by position, one per member; a second reason for a member
        // comes after the queue's members, with those for agents outside it.
        let mut by_position: Vec<(u32, Reason)> = Vec::with_capacity(by_policy.len());
        let mut after = Vec::new();
        for (ix, reason) in by_policy {
            match self.position(q, ix) {
                Some(pos) if !offered.contains(&ix) => by_position.push((pos, reason)),
                _ => after.push((ix, reason)),
            }
        }
        by_position.sort_by_key(|(pos, _)| *pos);
        let mut mine: Vec<(u32, Reason)> = Vec::with_capacity(by_position.len());
        for (pos, reason) in by_position {
            match mine.last() {
                Some((last, _)) if *last == pos => after.push((members[pos as usize], reason)),
                _ => mine.push((pos, reason)),
            }
        }
        let overridden =
            |pos: u32| mine.binary_search_by_key(&pos, |(p, _)| *p).is_ok() || offered.contains(&members[pos as usize]);
        // The host's counts, less the members whose reason is the policy's or who were offered.
        let mut counts: Vec<(Reason, u32)> =
            self.counts(q, availability).map(|(why, n)| (Reason::Fixed(why), n)).collect();
        let taken = mine.iter().map(|(p, _)| *p).chain(offered.iter().filter_map(|&ix| self.position(q, ix)));
        for why in taken.filter_map(|pos| self.reason(q, pos, availability)) {
            if let Some((_, n)) = counts.iter_mut().find(|(r, _)| r.as_str() == why) {
                *n -= 1;
            }
        }
        let extra: Vec<(u32, &'static str)> = extra.into_iter().filter(|(pos, _)| !overridden(*pos)).collect();
        for (_, why) in &extra {
            match counts.iter_mut().find(|(r, _)| r.as_str() == *why) {
                Some((_, n)) => *n += 1,
                None => counts.push((Reason::Fixed(why), 1)),
            }
        }
        counts.retain(|(_, n)| *n > 0);
        // The first `named` in queue order, merged from the three sources, each in order.
        let mut list: Vec<(AgentIx, Reason)> = Vec::new();
        let (mut host, mut e, mut m) = (self.next_unable(q, 0, availability), 0, 0);
        while list.len() < named {
            while let Some(pos) = host.filter(|&p| overridden(p)) {
                host = self.next_unable(q, pos + 1, availability);
            }
            let heads = [host, extra.get(e).map(|x| x.0), mine.get(m).map(|x| x.0)];
            let Some(pos) = heads.iter().flatten().min().copied() else { break };
            let reason = if host == Some(pos) {
                host = self.next_unable(q, pos + 1, availability);
                Reason::Fixed(self.reason(q, pos, availability).expect("an unable member"))
            } else if heads[1] == Some(pos) {
                e += 1;
                Reason::Fixed(extra[e - 1].1)
            } else {
                m += 1;
                mine[m - 1].1.clone()
            };
            list.push((members[pos as usize], reason));
        }
        list.extend(after.iter().take(named.saturating_sub(list.len())).cloned());
        let each = mine.iter().map(|(_, r)| r).chain(after.iter().map(|(_, r)| r));
        Skipped::tally(names, list, counts, each)
    }
}

impl QueueRoster {
    fn put(&mut self, pos: u32, code: u8, tight: bool) {
        self.codes[pos as usize] = code;
        self.counts[code as usize] += 1;
        self.open.set(pos, code == 0 || code >= BLOCKED);
        self.fit.set(pos, code == 0);
        self.tight.set(pos, (code == 0 || code >= BLOCKED) && tight);
    }
}
