-- A sticky agent, kept true by lifecycle hooks: a caller who calls again is
-- offered to the agent who answered them last time, if that agent can take it
-- now; otherwise to whoever has waited longest. The policy learns who answered
-- from `on_offer_accepted` (no polling, nothing kept per conversation), and
-- counts what each agent closed in `on_closed`. Its memory is the queue's memo,
-- which carries over a reload.
agents.define { id = "anna" }
agents.define { id = "bo" }

local candidates = require("rota.candidates")

policies.register("sticky", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local memo = ctx.queue.memo
        local last = memo.last and memo.last[ctx.conversation.caller.number or ""]
        -- The caller's last agent first, then whoever has waited longest; agents who let
        -- this conversation go only when nobody else can take it.
        local chosen = candidates.best(ctx, function(a, b)
            if (a.id == last) ~= (b.id == last) then
                return a.id == last
            end
            return a.idle_since < b.idle_since
        end)
        if chosen == nil then
            return policies.wait()
        end
        return policies.offer(chosen, ctx.options.timeout)
    end,
    on_offer_accepted = function(event)
        local number = event.conversation.caller.number
        if number then
            local memo = event.queue.memo
            memo.last = memo.last or {}
            memo.last[number] = event.agent.id
        end
    end,
    on_closed = function(event)
        local memo = event.queue.memo
        memo.closed = memo.closed or {}
        memo.closed[event.agent.id] = (memo.closed[event.agent.id] or 0) + 1
    end,
})

queues.define { id = "support", agents = { "anna", "bo" }, policy = "sticky" }
