-- longest_idle: offers to the agent who has been waiting longest.
-- Ties go to the agent listed first in the queue.
local candidates = require("rota.candidates")

local function better(a, b)
    return a.idle_since < b.idle_since
end

policies.register("longest_idle", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local a = candidates.best(ctx, better)
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
