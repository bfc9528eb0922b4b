-- weighted_random: like random, but an agent with weight 3 is three times as
-- likely as one with weight 1. Weights come from `options.weights[agent id]`,
-- else from the agent's `weight` (1 unless defined).
local candidates = require("rota.candidates")

policies.register("weighted_random", {
    options = {
        timeout = { type = "duration", default = "30s" },
        weights = { type = "any" },
    },
    decide = function(ctx)
        local agents = candidates.eligible(ctx)
        local weights = ctx.options.weights or {}
        local total = 0
        for _, a in agents do
            total += weights[a.id] or a.weight
        end
        if total <= 0 then
            return policies.wait()
        end
        local r = math.random() * total
        for _, a in agents do
            r -= weights[a.id] or a.weight
            if r < 0 then
                return policies.offer(a, ctx.options.timeout)
            end
        end
        return policies.offer(agents[#agents], ctx.options.timeout)
    end,
})
