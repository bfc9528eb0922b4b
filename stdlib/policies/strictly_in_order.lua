-- strictly_in_order: the open line's "strictly in order" distribution.
-- The conversation goes to the first agent of the queue's list; if they do not
-- answer within `pass_after` it passes to the next one. With
-- `check_availability`, an agent who is dismissed, on vacation, or has not
-- started the work day (or is offline) is passed over at once.
-- An agent who is available but busy is waited for, up to `pass_after`.
-- When the whole list was tried, the queue's `on_exhausted` decides. In the
-- rounds after a `wait` exhaustion nobody is waited for: the first agent of the
-- list who can take the chat gets it.
local candidates = require("rota.candidates")

-- "state_busy" -> "state_busy for pass_after", built once per reason rather than per decision.
local passed = setmetatable({}, {
    __index = function(t, blocked)
        local reason = blocked .. " for pass_after"
        t[blocked] = reason
        return reason
    end,
})

policies.register("strictly_in_order", {
    options = {
        pass_after = { type = "duration", default = "30s" },
        check_availability = { type = "boolean", default = true },
    },
    decide = function(ctx)
        local opt = ctx.options
        local memo = ctx.conversation.memo
        -- The queue's own list, read-only: this policy neither sorts nor filters it, and a copy
        -- of a large queue's list in every decision would cost more than the decision.
        local list = ctx.queue.agents
        -- After the list was exhausted and the customer waits, the first who can take it.
        local patient = ctx.conversation.round == 1 or ctx.queue.on_exhausted ~= "wait"
        local pos = memo.pos or 1
        -- When the agent at `pos` became the one to wait for.
        local since = memo.since or ctx.conversation.queued_at
        while pos <= #list do
            local a = list[pos]
            local why = nil
            -- Availability first: an offer withdrawn because the agent became unavailable
            -- shows why in the trace, not only that she was tried.
            if opt.check_availability and a.unavailable then
                why = a.unavailable
            elseif ctx.tried[a.id] then
                -- Why she cannot take it now if she cannot (an offer withdrawn when she
                -- switched to DnD), otherwise that she had her turn.
                why = candidates.blocked(ctx.queue, a, ctx.conversation.channel) or "already_tried"
            else
                local blocked = candidates.reason(ctx, a, false)
                if blocked == nil then
                    memo.pos, memo.since = pos, since
                    return policies.offer(a, opt.pass_after)
                end
                local waited = ctx.now - since
                if patient and waited < opt.pass_after then
                    memo.pos, memo.since = pos, since
                    return policies.wait(opt.pass_after - waited, a)
                end
                why = if patient then passed[blocked] else blocked
            end
            ctx:skip(a, why)
            pos += 1
            since = ctx.now
        end
        memo.pos, memo.since = pos, since
        -- The queue's on_exhausted decides what happens next (by default the customer waits
        -- and the list starts over when an agent frees up).
        return policies.exhausted("every agent in the list was tried")
    end,
})
