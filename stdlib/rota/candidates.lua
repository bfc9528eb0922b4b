-- rota.candidates: the checks every standard policy applies before an offer,
-- and a helper that picks the best candidate. Copy and change freely.
local skills = require("rota.skills")

local candidates = {}

-- Why agent `a` cannot be offered ctx.conversation now, or nil if it can.
--   a.blocked      set by the host: not in call-center mode, or not Waiting
--   queue.allows   the base statuses this queue routes to
--   a.unavailable  dismissed, on vacation, work day not started, offline
--                  (only when check_availability is not false)
--   skills         the conversation's required skills and levels
function candidates.reason(ctx, a, check_availability)
    if a.blocked then
        return a.blocked
    end
    if not ctx.queue.allows[a.base] then
        return "presence_not_allowed"
    end
    if check_availability ~= false and a.unavailable then
        return a.unavailable
    end
    local lacking = skills.missing(ctx.conversation, a)
    if lacking then
        return "missing_skill"
    end
    return nil
end

-- The candidate for which `better(a, b)` holds against all others, skipping
-- (and tracing) those who cannot take the conversation. Agents who already
-- let this conversation go are picked only when nobody else can take it.
function candidates.best(ctx, better)
    local best, fallback = nil, nil
    local tried = ctx.tried
    for _, a in ctx.candidates do
        local why = candidates.reason(ctx, a)
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

-- Every candidate who can take the conversation, in queue order.
function candidates.eligible(ctx)
    local out = {}
    for _, a in ctx.candidates do
        local why = candidates.reason(ctx, a)
        if why then
            ctx:skip(a, why)
        else
            table.insert(out, a)
        end
    end
    return out
end

return candidates
