-- round_robin: takes turns. The queue remembers who was offered last and
-- starts after them next time.
policies.register("round_robin", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local memo = ctx.queue.memo
        local fallback = nil
        -- The members who can take it, starting after the last one offered and going round.
        for a, i in ctx:members("queue", memo.last) do
            if not ctx.tried[a.id] then
                memo.last = i
                return policies.offer(a, ctx.options.timeout)
            end
            fallback = fallback or i
        end
        if fallback then
            memo.last = fallback
            return policies.offer(ctx.queue.agents[fallback], ctx.options.timeout)
        end
        return policies.wait()
    end,
})
