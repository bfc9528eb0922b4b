-- ring_all: offers to every agent who can take the conversation at once;
-- the first to accept gets it.
local candidates = require("rota.candidates")

policies.register("ring_all", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local agents = candidates.eligible(ctx)
        if #agents == 0 then
            return policies.wait()
        end
        return policies.offer_many(agents, ctx.options.timeout)
    end,
})
