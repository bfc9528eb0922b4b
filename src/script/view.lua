-- Lua side of the view (src/script/view.rs): builders the host calls once per
-- conversation or attempt, `ctx:skip`, and the wrapper every policy call goes
-- through. Loaded once per VM, outside the sandboxed rule files.
local empty, skipped, open, step = ...

-- ctx:skip(agent, reason): appends to a list shared by every context; the host
-- reads `nskip` entries of it after the call.
-- More skips than that in one decision is a runaway loop, not a trace anyone can read.
local MAX_SKIPS = 5000

local function skip(self, agent, reason)
    local n = self.nskip + 2
    if n > 2 * MAX_SKIPS then
        error("ctx:skip: more than " .. MAX_SKIPS .. " skips in one decision", 2)
    end
    self.nskip = n
    skipped[n - 1] = agent.idx
    skipped[n] = reason
end

-- ctx:members(order, after): the queue's members who can take this conversation now, in
-- `order`, each with its position in ctx.queue.agents; ctx:skilled(skill) likewise, highest
-- level of `skill` first. The host keeps these orders (src/domain/roster.rs); a walk costs
-- what it visits, not the queue's size.
-- A misused walk fails the decision at the policy's line, not at one of these, with the
-- host's words.
local function said(e)
    return (string.gsub(tostring(e), "^runtime error: ", ""))
end

local function walk(ctx, kind, arg)
    local ok, w = pcall(open, kind, arg)
    if not ok then
        error(said(w), 3)
    end
    local list = ctx.queue.agents
    return function()
        local ok, pos = pcall(step, w)
        if not ok then
            error(said(pos), 2)
        end
        if pos ~= nil then
            return list[pos], pos
        end
        return nil
    end
end

local function members(ctx, order, after)
    return walk(ctx, order, after)
end

local function skilled(ctx, skill)
    return walk(ctx, "skill", skill)
end

-- `ctx.candidates` is made when a policy first reads it in a decision: a policy that walks
-- the roster never pays for a copy of a large queue's list.
local clone = table.clone
local lazy = {
    __index = function(ctx, key)
        if key == "candidates" then
            local list = clone(ctx.queue.agents)
            rawset(ctx, "candidates", list)
            return list
        end
        return nil
    end,
}

local function party(name, number, sip)
    if name == nil and number == nil and sip == nil then
        return empty
    end
    return table.freeze({ name = name, number = number, sip = sip })
end

-- A conversation's policy context, built once at arrival; the conversation table,
-- `attempts` and `tried` are reached through it.
local function new_conversation(id, key, queue, channel, cname, cnumber, csip, sname, snumber, ssip,
                                 requires, attributes, arrived_at, queued_at, round, priority, memo, qtable)
    local attempts, tried = {}, {}
    local c = {
        id = id, key = key, queue = queue, channel = channel,
        caller = party(cname, cnumber, csip), service = party(sname, snumber, ssip),
        requires = requires or empty, attributes = attributes or empty,
        arrived_at = arrived_at, queued_at = queued_at, round = round, priority = priority,
        attempts = attempts, tried = tried, memo = memo or {},
    }
    -- What the conversation is belongs to the host; its memo is the policy's.
    table.freeze(c)
    local ctx = {
        conversation = c, attempts = attempts, tried = tried, ringing = empty,
        skip = skip, nskip = 0, members = members, skilled = skilled,
        queue = qtable, options = qtable.options,
    }
    return setmetatable(ctx, lazy)
end

-- An attempt that ended: appended to `attempts`, and `tried[agent]` says how it ended.
local function attempt(ctx, agent, queue, offered_at, outcome, ended_at, reason)
    local attempts = ctx.attempts
    attempts[#attempts + 1] = table.freeze({
        agent = agent, queue = queue, offered_at = offered_at, ended_at = ended_at, outcome = outcome,
        reason = reason,
    })
    ctx.tried[agent] = outcome
end

-- Calls a policy; hands back its decision (a single agent replaced by its
-- index) and how many skip entries it left.
local function call(decide, ctx, now)
    ctx.now = now
    -- The policy's own copy of the member list, to sort or filter as it likes, is made anew
    -- when read (the queue's list, read-only, stays as it is for every other decision).
    ctx.candidates = nil
    local kind, a, b, c = decide(ctx)
    if kind == "offer" and type(a) == "table" and a.idx ~= nil then
        a = a.idx
    elseif kind == "wait" and type(b) == "table" and b.idx ~= nil then
        b = b.idx
    end
    local n = ctx.nskip
    ctx.nskip = 0
    ctx.candidates = nil
    return kind, a, b, c, n
end

return new_conversation, attempt, call
