-- Re-routing when what a conversation needs changes: a chat comes in for
-- Norwegian; while it waits, the bot learns the customer writes German and
-- the integration says so (`PATCH /v1/conversations/{id}` with `requires`
-- and `attributes`; `test.update` here). The policy is asked again at once,
-- with the change in the trace, and offers the German speaker. Nothing polls.
agents.define { id = "nils", skills = { no = 5 } }
agents.define { id = "greta", skills = { de = 5 } }

queues.define {
    id = "web",
    agents = { "nils", "greta" },
    policy = "longest_idle",
    options = { timeout = "30s" },
}
