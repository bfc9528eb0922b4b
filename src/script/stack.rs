//! The hot paths of the view, straight through Luau's C API stack: writing fields of
//! agent tables, calling the view's Lua builders, and calling a policy and reading what it
//! returned; and compiling a chunk to native code.
//!
//! Keeping agent tables current is most of what the host writes into Lua: a few fields
//! per agent change, all day. mlua's `Table::raw_set` spends ~700 instructions on one
//! write (stack checks and guards, the key and value moved through its reference thread,
//! checks of the key and of the table's read-only flag); here a write is a key fetched by
//! number from a key ring, the value pushed, and `lua_rawset` (~150). Likewise a policy
//! call reads its decision and skip list off the stack instead of making an mlua
//! reference (a slot in its reference thread, freed again) of every string and table.
//!
//! Safety: the field writes are not protected calls, so a Lua error inside one would
//! unwind through Rust. The only error they can raise is an allocation failure, and they
//! run only while no memory limit is set (the host's writes, never inside a policy call)
//! — exactly where mlua itself skips protection, because a failure there is the process
//! being out of memory. Keys are strings from the ring, never nil or NaN. Calls push their
//! arguments the same way (the policy call before the caller sets the call's memory
//! limit) and run the Lua function itself under `lua_pcall`.

use std::os::raw::c_int;

use mlua::state::RawLua;
use mlua::{ffi, FromLua, Function, IntoLua, Lua, Table, Value as LuaValue};
use rustc_hash::FxHashMap;

/// Where one batch of writes keeps its two tables on the stack.
pub(super) struct Writer<'a> {
    state: *mut ffi::lua_State,
    ring: c_int,
    table: c_int,
    words: &'a mut Words,
}

/// Where the host's fixed words (state names, reasons) sit in the ring, after the keys, so
/// writing one is a fetch by number instead of hashing and interning its text again.
pub(super) struct Words {
    /// By the text's address and length: the words are `&'static str`s.
    slots: FxHashMap<(usize, usize), c_int>,
    next: c_int,
}

impl Words {
    /// Words go into the ring from `first` on (the keys take the slots before).
    pub(super) fn new(first: usize) -> Self {
        Words { slots: FxHashMap::default(), next: first as c_int }
    }
}

/// Runs `write` with a [`Writer`] on `table`; `ring` holds the key strings at 1, 2, 3...
/// and then the words. A frozen table (a script may `table.freeze` what it is handed) is
/// written all the same: the view belongs to the host, and it stays frozen to scripts.
pub(super) fn write_fields(lua: &Lua, ring: &Table, words: &mut Words, table: &Table, write: impl FnOnce(&mut Writer)) {
    // SAFETY: `state` is this VM's main thread, handed over by mlua for the closure; the stack
    // is checked for the four slots used and restored to `top` on every way out; unprotected
    // writes are sound here as the module comment argues (no memory limit is set).
    lua.exec_raw_lua(|raw| unsafe {
        let state = raw.state();
        let top = ffi::lua_gettop(state);
        // The two tables, a key and a value.
        if ffi::lua_checkstack(state, 4) == 0 {
            return;
        }
        if ring.push_into_stack(raw).is_err() || table.push_into_stack(raw).is_err() {
            ffi::lua_settop(state, top);
            return;
        }
        let frozen = ffi::lua_getreadonly(state, top + 2) != 0;
        if frozen {
            ffi::lua_setreadonly(state, top + 2, 0);
        }
        write(&mut Writer { state, ring: top + 1, table: top + 2, words });
        if frozen {
            ffi::lua_setreadonly(state, top + 2, 1);
        }
        ffi::lua_settop(state, top);
    })
}

impl Writer<'_> {
    /// Pushes the key, lets `push` push the value, and stores the pair.
    fn set(&mut self, key: u8, push: impl FnOnce(*mut ffi::lua_State)) {
        // SAFETY: `ring` and `table` are the two slots `write_fields` pushed and still holds;
        // the key fetched from the ring is a string, and `push` pushes exactly one value.
        unsafe {
            ffi::lua_rawgeti_(self.state, self.ring, key as c_int + 1);
            push(self.state);
            ffi::lua_rawset(self.state, self.table);
        }
    }

    pub(super) fn number(&mut self, key: u8, n: f64) {
        // SAFETY: one push into the slot `write_fields` checked room for.
        self.set(key, |state| unsafe { ffi::lua_pushnumber(state, n) });
    }

    pub(super) fn boolean(&mut self, key: u8, b: bool) {
        // SAFETY: one push into the slot `write_fields` checked room for.
        self.set(key, |state| unsafe { ffi::lua_pushboolean(state, b as c_int) });
    }

    /// One of the host's fixed words, or nil (the field is removed) for `None`.
    pub(super) fn word(&mut self, key: u8, w: Option<&'static str>) {
        let Some(w) = w else {
            // SAFETY: one push into the slot `write_fields` checked room for.
            return self.set(key, |state| unsafe { ffi::lua_pushnil(state) });
        };
        let ring = self.ring;
        let slot = match self.words.slots.get(&(w.as_ptr() as usize, w.len())) {
            Some(&slot) => slot,
            None => {
                let slot = self.words.next;
                // SAFETY: pushes the word (a `&'static str`, copied by Luau) into the value slot
                // `write_fields` checked room for, and pops it into the ring, which is on the stack.
                unsafe {
                    ffi::lua_pushlstring_(self.state, w.as_ptr().cast(), w.len());
                    ffi::lua_rawseti_(self.state, ring, slot);
                }
                self.words.next += 1;
                self.words.slots.insert((w.as_ptr() as usize, w.len()), slot);
                slot
            }
        };
        // SAFETY: one push (the word from the ring, on the stack) into the checked value slot.
        self.set(key, |state| unsafe {
            ffi::lua_rawgeti_(state, ring, slot);
        });
    }

    /// A string, or nil (the field is removed) for `None`.
    pub(super) fn string(&mut self, key: u8, s: Option<&str>) {
        // SAFETY: one push (Luau copies the bytes) into the checked value slot.
        self.set(key, |state| unsafe {
            match s {
                Some(s) => ffi::lua_pushlstring_(state, s.as_ptr().cast(), s.len()),
                None => ffi::lua_pushnil(state),
            }
        });
    }
}

/// The values a protected call returned, still on the stack.
pub(super) struct Results<'a> {
    raw: &'a RawLua,
    base: c_int,
    count: c_int,
}

impl Results<'_> {
    /// The stack slot of result `i` (from 0) and its Lua type, if there is such a result.
    fn slot(&self, i: c_int) -> Option<(c_int, c_int)> {
        let idx = self.base + i;
        // SAFETY: `idx` is one of the call's results, on the stack while `self` lives.
        (i < self.count).then(|| (idx, unsafe { ffi::lua_type(self.raw.state(), idx) }))
    }

    /// The bytes of result `i` if it is a string, read in place.
    pub(super) fn bytes(&self, i: c_int) -> Option<&[u8]> {
        let (idx, _) = self.slot(i).filter(|&(_, t)| t == ffi::LUA_TSTRING)?;
        let mut len = 0usize;
        // SAFETY: the slot holds a string (checked above); it stays on the stack, so alive and
        // unmoved, for as long as `self` is borrowed, which bounds the returned slice.
        unsafe {
            let ptr = ffi::lua_tolstring(self.raw.state(), idx, &mut len);
            Some(std::slice::from_raw_parts(ptr.cast::<u8>(), len))
        }
    }

    /// Result `i` if it is a number.
    pub(super) fn number(&self, i: c_int) -> Option<f64> {
        let (idx, _) = self.slot(i).filter(|&(_, t)| t == ffi::LUA_TNUMBER)?;
        // SAFETY: the slot is one of the results and holds a number (checked above).
        Some(unsafe { ffi::lua_tonumber(self.raw.state(), idx) })
    }

    /// Result `i` as an mlua value (nil past the end). Strings and tables become
    /// references, so read the common cases with [`Results::bytes`] or as numbers.
    pub(super) fn value(&self, i: c_int) -> LuaValue {
        match self.slot(i) {
            // SAFETY: `idx` is one of the results, on the stack of `self.raw`'s state.
            Some((idx, _)) => unsafe { LuaValue::from_stack(idx, self.raw) }.unwrap_or(LuaValue::Nil),
            None => LuaValue::Nil,
        }
    }
}

/// The message handler of a policy call. Luau runs it where the error was raised, with the
/// call stack still there, so it can say where: an error without a `file:line:` of its own
/// (a table or other value, an error inside a library function such as `string.find`, the
/// CPU budget running out there, memory running out) gets the line of the innermost script
/// function. It never runs script code: a value that is not a string or a number becomes
/// its type name, whatever `__tostring` it carries. Its text is built on the Lua stack (no
/// Rust value is alive if a push fails and unwinds), and a Rust callback's error (userdata)
/// is kept as it is.
unsafe extern "C-unwind" fn locate(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Luau calls this as a message handler with the error value at index 1 and room for
    // a few pushes (LUA_MINSTACK); it reads only that value and the call stack through
    // `lua_getinfo`, and raises errors only through Lua, with no Rust value alive that needs
    // dropping (the text is built in a stack array).
    unsafe {
        let kind = ffi::lua_type(state, 1);
        if kind == ffi::LUA_TUSERDATA {
            ffi::lua_pushvalue(state, 1);
            return 1;
        }
        let located = (kind == ffi::LUA_TSTRING || kind == ffi::LUA_TNUMBER) && {
            let mut len = 0;
            let ptr = ffi::lua_tolstring(state, 1, &mut len);
            super::location(std::slice::from_raw_parts(ptr.cast::<u8>(), len)).is_some()
        };
        if located {
            ffi::lua_pushvalue(state, 1);
            return 1;
        }
        let mut place = [0u8; 300];
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        let mut len = 0;
        while level < 64 && ffi::lua_getinfo(state, level, c"sl".as_ptr(), &mut ar) != 0 {
            if ar.currentline > 0 && !ar.short_src.is_null() {
                use std::io::Write;
                let src = std::ffi::CStr::from_ptr(ar.short_src).to_bytes();
                let mut cursor = std::io::Cursor::new(&mut place[..]);
                let _ = cursor.write_all(src);
                let _ = write!(cursor, ":{}: ", ar.currentline);
                len = cursor.position() as usize;
                break;
            }
            level += 1;
        }
        ffi::lua_pushlstring(state, place.as_ptr().cast(), len);
        if kind == ffi::LUA_TSTRING || kind == ffi::LUA_TNUMBER {
            ffi::lua_pushvalue(state, 1);
        } else {
            let what = c"error value of type ";
            ffi::lua_pushlstring(state, what.as_ptr(), what.to_bytes().len());
            ffi::lua_pushstring(state, ffi::lua_typename(state, kind));
            ffi::lua_concat(state, 2);
        }
        ffi::lua_concat(state, 2);
        1
    }
}

/// [`locate`] as a Lua function, to be made once per VM and handed to [`call_policy`].
pub(super) fn message_handler(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `locate` follows the C function protocol: it reads its one argument, pushes one
    // result and returns 1, and raises errors only through Lua (`lua_pushlstring` and friends).
    unsafe { lua.create_c_function(locate) }
}

/// The error a failed `lua_pcall` with status `status` left on top of the stack, as mlua
/// would report it (a Rust callback's error comes back as itself). Other values are read
/// without running script code (no `__tostring`).
unsafe fn error_on_top(raw: &RawLua, status: c_int) -> mlua::Error {
    // SAFETY: the caller's failed `lua_pcall` left the error value on top of the stack.
    match unsafe { LuaValue::from_stack(-1, raw) } {
        Ok(LuaValue::Error(e)) => *e,
        Ok(value) => {
            let text = super::fields::plain_text(&value);
            match status {
                ffi::LUA_ERRMEM => mlua::Error::MemoryError(text),
                _ => mlua::Error::RuntimeError(text),
            }
        }
        Err(e) => e,
    }
}

/// Calls `wrapper(policy, ctx, now)` as a protected call with `handler` ([`message_handler`])
/// as its message handler, with `arm` run after the arguments
/// are pushed and `disarm` right after the call, and hands what it returned to `read`,
/// together with `list` (the shared skip list) for reading entries off by number.
#[allow(clippy::too_many_arguments)]
pub(super) fn call_policy<R>(
    lua: &Lua,
    wrapper: &Function,
    handler: &Function,
    policy: &Function,
    ctx: &Table,
    now: f64,
    list: &Table,
    arm: impl FnOnce(),
    disarm: impl FnOnce(),
    read: impl FnOnce(&Results, &List) -> R,
) -> mlua::Result<R> {
    // SAFETY: the stack is checked for the five slots pushed, the call is protected (a script
    // error comes back as a status, with the handler's text on top), the results are read only
    // inside `read` while they are on the stack, and the stack is restored to `top`.
    lua.exec_raw_lua(|raw| unsafe {
        let state = raw.state();
        let top = ffi::lua_gettop(state);
        // The list, the wrapper and its three arguments (the call's results are its own).
        if ffi::lua_checkstack(state, 5) == 0 {
            return Err(mlua::Error::StackError);
        }
        list.push_into_stack(raw)?;
        handler.push_into_stack(raw)?;
        wrapper.push_into_stack(raw)?;
        policy.push_into_stack(raw)?;
        ctx.push_into_stack(raw)?;
        ffi::lua_pushnumber(state, now);
        arm();
        let status = ffi::lua_pcall(state, 3, ffi::LUA_MULTRET, top + 2);
        disarm();
        let result = if status == ffi::LUA_OK {
            let results = Results { raw, base: top + 3, count: ffi::lua_gettop(state) - top - 2 };
            Ok(read(&results, &List { raw, table: top + 1 }))
        } else {
            Err(error_on_top(raw, status))
        };
        ffi::lua_settop(state, top);
        result
    })
}

/// A list table on the stack, read entry by entry without references.
pub(super) struct List<'a> {
    raw: &'a RawLua,
    table: c_int,
}

impl List<'_> {
    /// Runs `read` with entry `i` pushed on the stack (as a one-value [`Results`]).
    pub(super) fn entry<R>(&self, i: i64, read: impl FnOnce(&Results) -> R) -> R {
        let state = self.raw.state();
        // SAFETY: `self.table` is the list slot `call_policy` pushed and still holds; room for
        // the entry is checked, and the stack is restored after `read`.
        unsafe {
            let top = ffi::lua_gettop(state);
            // Room for the entry; the call's own results have been counted already.
            if ffi::lua_checkstack(state, 1) == 0 || i > c_int::MAX as i64 || i < 1 {
                return read(&Results { raw: self.raw, base: top + 1, count: 0 });
            }
            ffi::lua_rawgeti_(state, self.table, i as c_int);
            let r = read(&Results { raw: self.raw, base: top + 1, count: 1 });
            ffi::lua_settop(state, top);
            r
        }
    }
}

/// An argument of a call into one of the view's Lua builders.
pub(super) enum Arg<'a> {
    /// A string, or nil.
    Str(Option<&'a str>),
    Number(f64),
    /// A table, or nil.
    Table(Option<&'a Table>),
}

/// Calls `f(args...)` (a host builder from `view.lua`, not a script), protected, and returns
/// its first result if it is a table.
pub(super) fn call(lua: &Lua, f: &Function, args: &[Arg]) -> mlua::Result<Option<Table>> {
    // SAFETY: room for the function and its arguments is checked, the call is protected, a
    // table result becomes an mlua reference before the stack is restored to `top`.
    lua.exec_raw_lua(|raw| unsafe {
        let state = raw.state();
        let top = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, args.len() as c_int + 1) == 0 {
            return Err(mlua::Error::StackError);
        }
        f.push_into_stack(raw)?;
        for arg in args {
            match arg {
                Arg::Str(Some(s)) => ffi::lua_pushlstring_(state, s.as_ptr().cast(), s.len()),
                Arg::Number(n) => ffi::lua_pushnumber(state, *n),
                Arg::Table(Some(t)) => t.push_into_stack(raw)?,
                Arg::Str(None) | Arg::Table(None) => ffi::lua_pushnil(state),
            }
        }
        let result = match ffi::lua_pcall(state, args.len() as c_int, 1, 0) {
            ffi::LUA_OK if ffi::lua_type(state, -1) == ffi::LUA_TTABLE => Table::from_stack(-1, raw).map(Some),
            ffi::LUA_OK => Ok(None),
            status => Err(error_on_top(raw, status)),
        };
        ffi::lua_settop(state, top);
        result
    })
}

/// Compiles the loaded chunk `f` and every function in it to native code, where the platform
/// supports it (elsewhere they stay interpreted). Functions already made from it switch over.
pub(super) fn compile_native(lua: &Lua, f: &Function) {
    // SAFETY: the function is pushed where room was checked, compiled in place, and the stack
    // is restored; code generation raises no Lua errors.
    lua.exec_raw_lua(|raw| unsafe {
        if ffi::luau_codegen_supported() == 0 {
            return;
        }
        let state = raw.state();
        let top = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, 1) != 0 && f.push_into_stack(raw).is_ok() {
            ffi::luau_codegen_compile(state, -1);
        }
        ffi::lua_settop(state, top);
    })
}
