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

-- Callback requests age by a function: a customer who asked twice climbs
-- three times as fast. The function gets the conversation (with `waited`, in
-- seconds) and returns what it adds; if it fails, the error is logged and
-- counted and the conversation keeps its own priority.
queues.define {
    id = "callbacks",
    agents = { "anna", "bo" },
    policy = "longest_idle",
    options = { timeout = "30s" },
    aging = function(c)
        local per_minute = if c.attributes.asked_twice then 3 else 1
        return c.waited // 60 * per_minute
    end,
}
