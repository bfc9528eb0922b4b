-- fewest_conversations: offers to the agent who has answered the fewest conversations.
-- Ties go to the agent listed first in the queue.
local candidates = require("rota.candidates")

local function better(a, b)
    return a.answered < b.answered
end

policies.register("fewest_conversations", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local a = candidates.best(ctx, better)
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
