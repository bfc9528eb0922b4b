//! `ctx:members(order)` and `ctx:skilled(skill)`: a policy's walk over its queue's roster
//! ([`crate::roster`]), member by member, stopping when the policy has what it wants.
//!
//! The engine lends its roster to the VM for one decision ([`Lent`], kept as app data while
//! the policy runs) and takes it back after. A walk is a small userdata; each step asks the
//! roster for the next fit member and passes over those without room on the conversation's
//! channel or without a skill it requires, noting why for the trace. A walk kept past its
//! decision (in a memo) fails when used, since it would walk another conversation's queue.

use std::collections::BTreeMap;

use mlua::{AnyUserData, Function, Lua, UserData, UserDataRefMut, Value as LuaValue};

use crate::roster::{Cursor, Order, Roster, Walked};

/// What a decision lends the VM: the roster, and the conversation its walks are for.
pub(crate) struct Lent {
    pub roster: Roster,
    pub queue: u32,
    pub channel: String,
    pub requires: BTreeMap<String, f64>,
    pub walked: Walked,
    /// Which decision this is, so a walk from an earlier one is refused.
    pub serial: u64,
}

/// One walk in progress.
struct Walk {
    serial: u64,
    order: Order,
    cursor: Cursor,
    wrap_after: Option<u32>,
}

impl UserData for Walk {}

/// The host half of `ctx:members` / `ctx:skilled`, handed to `view.lua`: `open(order, arg)`
/// makes a walk and `step(walk)` gives the next member's 1-based position in
/// `ctx.queue.agents`, or nil at the end.
pub(super) fn functions(lua: &Lua) -> mlua::Result<(Function, Function)> {
    let open = lua.create_function(|lua, (order, arg): (LuaValue, LuaValue)| {
        let mut lent = lua
            .app_data_mut::<Lent>()
            .ok_or_else(|| mlua::Error::runtime("ctx:members and ctx:skilled work only while a policy decides"))?;
        let name = order.as_string().map(|s| s.to_string_lossy());
        let (order, wrap_after) = match name.as_deref() {
            Some("skill") => match arg.as_string() {
                Some(skill) => (Order::Skill(skill.to_string_lossy().into()), None),
                None => return Err(mlua::Error::runtime("ctx:skilled expects a skill name")),
            },
            Some(named) => match Order::named(named) {
                Some(Order::Queue) => (Order::Queue, after(&arg, lent.roster.members(lent.queue).len())?),
                Some(order) if arg.is_nil() => (order, None),
                Some(_) => return Err(mlua::Error::runtime("ctx:members: only the \"queue\" order takes a start")),
                None => return Err(unknown(named)),
            },
            None => return Err(unknown(&format!("{order:?}"))),
        };
        lent.walked.used = true;
        Ok(Walk { serial: lent.serial, order, cursor: Cursor::default(), wrap_after })
    })?;
    let step = lua.create_function(|lua, walk: AnyUserData| {
        let mut walk: UserDataRefMut<Walk> = walk.borrow_mut()?;
        let mut lent = lua.app_data_mut::<Lent>().filter(|l| l.serial == walk.serial).ok_or_else(|| {
            mlua::Error::runtime("a ctx:members walk was used after its decision; start a new one in each decision")
        })?;
        let Lent { roster, queue, channel, requires, walked, .. } = &mut *lent;
        let Walk { order, cursor, wrap_after, .. } = &mut *walk;
        Ok(roster.step(*queue, order, cursor, *wrap_after, channel, requires, walked).map(|pos| pos + 1))
    })?;
    Ok((open, step))
}

/// A queue walk's start: after this 1-based position (0 or nil: from the top).
fn after(arg: &LuaValue, len: usize) -> mlua::Result<Option<u32>> {
    match arg {
        LuaValue::Nil => Ok(None),
        LuaValue::Integer(n) => Ok(position(*n as f64, len)),
        LuaValue::Number(n) if !n.is_nan() => Ok(position(*n, len)),
        _ => Err(mlua::Error::runtime("ctx:members(\"queue\", after): `after` must be a position in ctx.queue.agents")),
    }
}

/// 1-based `n` as a 0-based position, clamped into the list; below 1, no start.
fn position(n: f64, len: usize) -> Option<u32> {
    (n >= 1.0 && len > 0).then(|| (n.min(len as f64) as u32) - 1)
}

fn unknown(order: &str) -> mlua::Error {
    mlua::Error::runtime(format!("ctx:members: unknown order `{order}` (one of: {})", Order::NAMES))
}
