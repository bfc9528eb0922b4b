-- rota.candidates: the checks the standard policies apply before an offer,
-- and helpers that pick candidates. Copy and change freely.
--
-- ctx.candidates is every agent of the queue, in queue order. An agent can
-- take an offer when the queue routes its status (`queue.statuses`: call-center
-- mode unless the queue also routes `ready` agents), it is Waiting, and the
-- queue allows its base status, and it has room for one more conversation of
-- the conversation's channel (`agent.free[channel]` slots on a shared channel;
-- a channel missing from `agent.free` is exclusive and takes an agent whose
-- `agent.load` is empty). `agent.blocked` is the reason an agent cannot take
-- one from a call-center-only queue (nil when it can); `candidates.blocked`
-- reads it against the queue and the channel. The host writes the reasons of agents who cannot
-- take one into the trace itself (state_busy, presence_not_allowed, ...); a
-- policy records only its own reasons with ctx:skip(agent, reason).
local skills = require("rota.skills")

local candidates = {}

-- Why agent `a` has no room for one more conversation of `channel`, or nil.
local function full(a, channel)
    local free = a.free[channel]
    if free == nil then
        return if next(a.load) ~= nil then "channel_busy" else nil
    elseif free > 0 then
        return nil
    end
    return if a.capacity[channel] == 0 then "no_capacity" else "channel_full"
end
candidates.full = full

-- Why queue `q` cannot offer agent `a` anything now (status, state, presence),
-- or nil if it can; with `channel`, also nothing of that channel (capacity).
local function blocked(q, a, channel)
    local why = a.blocked
    if why == nil then
        if not q.statuses.callcenter then
            return "status_callcenter"
        end
    elseif why == "status_ready" and q.statuses.ready then
        why = nil
    end
    if why == nil and not q.allows[a.base] then
        return "presence_not_allowed"
    end
    if why == nil and channel ~= nil then
        return full(a, channel)
    end
    return why
end
candidates.blocked = blocked

-- Why agent `a` cannot be offered ctx.conversation now, or nil if it can.
-- With check_availability == false, the open-line availability criteria
-- (dismissed, on vacation, work day not started, offline) are not applied.
function candidates.reason(ctx, a, check_availability)
    local why = blocked(ctx.queue, a, ctx.conversation.channel)
    if why then
        return why
    end
    if check_availability ~= false and a.unavailable then
        return a.unavailable
    end
    if skills.missing(ctx.conversation, a) then
        return "missing_skill"
    end
    return nil
end

-- The candidate able to take the conversation for which `better(a, b)` holds
-- against all others, by a scan of ctx.candidates (every member, every decision;
-- candidates.first walks the host's orders instead).
-- Agents who already let this conversation go are picked only when nobody
-- else can take it.
function candidates.best(ctx, better)
    local best, fallback = nil, nil
    local tried, q = ctx.tried, ctx.queue
    local allows, statuses = q.allows, q.statuses
    local callcenter, ready = statuses.callcenter, statuses.ready
    local check_skills = next(ctx.conversation.requires) ~= nil
    local channel = ctx.conversation.channel
    for _, a in ctx.candidates do
        -- blocked() and the availability and skill checks inlined: this loop runs for every
        -- candidate of every decision.
        local b = a.blocked
        if b == nil then
            if not callcenter then
                continue
            end
        elseif b ~= "status_ready" or not ready then
            continue
        end
        if not allows[a.base] or full(a, channel) then
            continue
        end
        local why = a.unavailable
        if not why and check_skills and skills.missing(ctx.conversation, a) then
            why = "missing_skill"
        end
        if why then
            ctx:skip(a, why)
        elseif tried[a.id] then
            if fallback == nil or better(a, fallback) then
                fallback = a
            end
        elseif best == nil or better(a, best) then
            best = a
        end
    end
    return best or fallback
end

-- Every member who can take the conversation (ctx:members), in queue order.
function candidates.eligible(ctx)
    local out = {}
    for a in ctx:members("queue") do
        table.insert(out, a)
    end
    return out
end

-- The first member in `order` (see ctx:members: "queue", "idle", "answered", "talk_time")
-- who has not let this conversation go yet, else the first who has; nil when nobody can
-- take it. The walk stops there, so the cost follows the members it looks at.
function candidates.first(ctx, order)
    local tried, fallback = ctx.tried, nil
    for a in ctx:members(order) do
        if not tried[a.id] then
            return a
        end
        fallback = fallback or a
    end
    return fallback
end

return candidates
