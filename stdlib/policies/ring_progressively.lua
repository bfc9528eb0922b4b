-- ring_progressively: rings the first agent, then adds one more every `step`
-- while nobody has answered, until `timeout` ends the whole offer.
policies.register("ring_progressively", {
    options = {
        step = { type = "duration", default = "10s" },
        timeout = { type = "duration", default = "60s" },
    },
    decide = function(ctx)
        local ringing = {}
        for _, a in ctx.ringing do
            ringing[a.id] = true
        end
        local agents = table.clone(ctx.ringing)
        for a in ctx:members("queue") do
            if not ringing[a.id] and not ctx.tried[a.id] then
                table.insert(agents, a)
                break
            end
        end
        if #agents == 0 then
            return policies.wait()
        end
        return policies.offer_many(agents, ctx.options.timeout, ctx.options.step)
    end,
})
