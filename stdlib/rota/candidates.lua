-- rota.candidates: the checks the standard policies apply before an offer,
-- and helpers that pick candidates. Copy and change freely.
--
-- ctx.candidates  every agent of the queue, in queue order
-- ctx.available   those who can take an offer now: call-center mode, Waiting,
--                 and a presence the queue allows (kept up to date by the host)
--
-- The host writes the reasons of candidates outside ctx.available into the
-- trace itself (state_busy, presence_not_allowed, ...); a policy records only
-- its own reasons with ctx:skip(agent, reason).
local skills = require("rota.skills")

local candidates = {}

-- Why agent `a` cannot be offered ctx.conversation now, or nil if it can.
-- With check_availability == false, the open-line availability criteria
-- (dismissed, on vacation, work day not started, offline) are not applied.
function candidates.reason(ctx, a, check_availability)
    local why = a.blocked
    if why then
        return why
    end
    if not ctx.queue.allows[a.base] then
        return "presence_not_allowed"
    end
    if check_availability ~= false and a.unavailable then
        return a.unavailable
    end
    if skills.missing(ctx.conversation, a) then
        return "missing_skill"
    end
    return nil
end

-- Why an available agent should still not be offered this conversation:
-- unavailable by the open-line criteria, or lacking a required skill.
local function unfit(ctx, a, check_skills)
    if a.unavailable then
        return a.unavailable
    end
    if check_skills and skills.missing(ctx.conversation, a) then
        return "missing_skill"
    end
    return nil
end

-- The available candidate for which `better(a, b)` holds against all others.
-- Agents who already let this conversation go are picked only when nobody
-- else can take it.
function candidates.best(ctx, better)
    local best, fallback = nil, nil
    local tried = ctx.tried
    local check_skills = next(ctx.conversation.requires) ~= nil
    for _, a in ctx.available do
        local why = unfit(ctx, a, check_skills)
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

-- Every available candidate fit for the conversation, in queue order.
function candidates.eligible(ctx)
    local out = {}
    local check_skills = next(ctx.conversation.requires) ~= nil
    for _, a in ctx.available do
        local why = unfit(ctx, a, check_skills)
        if why then
            ctx:skip(a, why)
        else
            table.insert(out, a)
        end
    end
    return out
end

return candidates
