-- The service desk rings Pia; whoever is on standby duty hears about calls she
-- misses, and about callers who give up waiting.
queues.define {
    id = "service_desk",
    name = "Service desk",
    agents = { "pia" },
    policy = "longest_idle",
    options = { timeout = "20s" },
    standby = "missed_calls",
}
