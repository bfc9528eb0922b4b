-- least_talk_time: offers to the agent with the least talk time.
-- Ties go to the agent listed first in the queue.
local candidates = require("rota.candidates")

local function better(a, b)
    return a.talk_time < b.talk_time
end

policies.register("least_talk_time", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local a = candidates.best(ctx, better)
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
