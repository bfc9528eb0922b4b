-- least_talk_time: offers to the agent with the least talk time.
-- Ties go to the agent listed first in the queue. The host keeps the queue's members in
-- this order (ctx:members), so a decision costs the same in a queue of 10 and of 10,000.
local candidates = require("rota.candidates")

policies.register("least_talk_time", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local a = candidates.first(ctx, "talk_time")
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
