-- Waiting order: when an agent frees up, the best waiting conversation is
-- offered first, across every queue the agent serves: the highest priority,
-- then the caller who has waited longest. Priority comes with the arrival
-- (`priority = 10` for a VIP), can change while it waits (PATCH, test.update),
-- and grows with waiting time where a queue says so (`aging`). Nothing polls:
-- each waiting conversation is asked again when an agent frees up.
agents.define { id = "anna" }
agents.define { id = "bo" }

-- General callers gain a point of priority for every minute they wait.
queues.define {
    id = "general",
    agents = { "anna", "bo" },
    policy = "longest_idle",
    options = { timeout = "30s" },
    aging = { every = "1m", step = 1 },
}

queues.define {
    id = "billing",
    agents = { "anna", "bo" },
    policy = "longest_idle",
    options = { timeout = "30s" },
}
