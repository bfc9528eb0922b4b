-- fewest_conversations: offers to the agent who has answered the fewest conversations.
-- Ties go to the agent listed first in the queue. The host keeps the queue's members in
-- this order (ctx:members), so a decision costs the same in a queue of 10 and of 10,000.
local candidates = require("rota.candidates")

policies.register("fewest_conversations", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local a = candidates.first(ctx, "answered")
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
