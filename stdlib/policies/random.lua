-- random: offers to one of the agents who can take the conversation, each
-- equally likely. math.random is seeded by the host, so runs are repeatable.
local candidates = require("rota.candidates")

policies.register("random", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local agents = candidates.eligible(ctx)
        if #agents == 0 then
            return policies.wait()
        end
        return policies.offer(agents[math.random(#agents)], ctx.options.timeout)
    end,
})
