-- longest_idle: offers to the agent who has been waiting longest.
-- Ties go to the agent listed first in the queue. The host keeps the queue's members in
-- this order (ctx:members), so a decision costs the same in a queue of 10 and of 10,000.
local candidates = require("rota.candidates")

policies.register("longest_idle", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local a = candidates.first(ctx, "idle")
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
