-- round_robin: takes turns. The queue remembers who was offered last and
-- starts after them next time.
local candidates = require("rota.candidates")

policies.register("round_robin", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local list = ctx.candidates
        local n = #list
        local memo = ctx.queue.memo
        local start = memo.last or 0
        local fallback = nil
        for step = 1, n do
            local i = (start + step - 1) % n + 1
            local a = list[i]
            -- Agents who cannot take an offer at all are traced by the host.
            if not candidates.blocked(ctx.queue, a, ctx.conversation.channel) then
                local why = candidates.reason(ctx, a)
                if why then
                    ctx:skip(a, why)
                elseif ctx.tried[a.id] then
                    fallback = fallback or i
                else
                    memo.last = i
                    return policies.offer(a, ctx.options.timeout)
                end
            end
        end
        if fallback then
            memo.last = fallback
            return policies.offer(list[fallback], ctx.options.timeout)
        end
        return policies.wait()
    end,
})
