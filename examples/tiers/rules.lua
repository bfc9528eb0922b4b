-- Tiers: Anna is a VIP-line agent first (level 1) who helps on the general
-- line when she is free (level 2); Bo works the general line. An agent who
-- frees up takes work from the queues where they are in the first tier
-- first, even if a caller elsewhere has waited longer; within a queue, the
-- members of the first tier are offered before the others.
agents.define { id = "anna" }
agents.define { id = "bo" }

queues.define { id = "vip_line", agents = { "anna" }, policy = "strictly_in_order",
                options = { pass_after = "30s" } }
queues.define {
    id = "general",
    agents = { "anna", "bo" },
    levels = { anna = 2 }, -- bo is in the first tier here, though listed second
    policy = "strictly_in_order",
    options = { pass_after = "30s" },
}
