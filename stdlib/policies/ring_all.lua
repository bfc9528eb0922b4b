-- ring_all: offers to every agent who can take the conversation at once;
-- the first to accept gets it. Asked again after a decline while the others
-- still ring, it adds whoever has become free, but not one who declined.
local candidates = require("rota.candidates")

policies.register("ring_all", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local agents = candidates.eligible(ctx)
        if #ctx.ringing > 0 then
            local fresh = {}
            for _, a in agents do
                if ctx.tried[a.id] then
                    ctx:skip(a, "already_tried")
                else
                    table.insert(fresh, a)
                end
            end
            agents = fresh
        end
        if #agents == 0 then
            return policies.wait()
        end
        return policies.offer_many(agents, ctx.options.timeout)
    end,
})
