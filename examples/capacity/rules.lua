-- Capacity per channel: an agent of the support team takes one call, with
-- nothing beside it, or up to three chats at once. Bo is new and takes one
-- chat at a time. While a call rings or lasts no chat is offered, and a call
-- waits for an agent who holds no chats; a chat's wrap-up keeps its slot.
teams.define {
    id = "support",
    wrap_up = "10s",
    capacity = { voice = "exclusive", chat = 3 },
}
presence.pause_cause { id = "lunch" }
agents.define { id = "anna", team = "support" }
agents.define { id = "bo", team = "support", capacity = { chat = 1 } }

-- Chats go to the agent with the most free chat slots; the agent listed
-- first wins a tie. `agent.free` has an entry for every shared channel.
local candidates = require("rota.candidates")

policies.register("most_room", {
    options = { timeout = { type = "duration", default = "30s" } },
    decide = function(ctx)
        local channel = ctx.conversation.channel
        local a = candidates.best(ctx, function(a, b)
            return a.free[channel] > b.free[channel]
        end)
        if a == nil then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})

queues.define { id = "calls", agents = { "anna", "bo" }, policy = "longest_idle" }
queues.define { id = "chats", agents = { "anna", "bo" }, policy = "most_room" }
