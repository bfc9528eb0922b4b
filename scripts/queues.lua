-- Queues: open lines and services, each with an ordered agent list and a policy.

-- The open line: chats go to Olga first; if she does not answer within 12
-- hours, to Ivan, who stands in for her. When Olga is on vacation or has not
-- started her work day, Ivan gets the chat at once.
queues.define {
    id = "whatsapp_line",
    name = "WhatsApp line",
    agents = { "olga", "ivan" },
    policy = "strictly_in_order",
    options = { pass_after = "12h", check_availability = true },
}

-- First-line support: the agent who has waited longest gets the next call.
queues.define {
    id = "support",
    name = "Customer support",
    agents = { "anna", "bjorn", "carla" },
    policy = "longest_idle",
    options = { timeout = "20s" },
    allowed = { "available" },
    max_wait = "10m",
    on_max_wait = "sales",
    fallback = "ring_all",
    standby = "support_missed", -- see standby.lua
    workflows = { abandoned = "callback" }, -- see workflows.lua
}

-- Sales takes turns.
queues.define {
    id = "sales",
    name = "Sales",
    agents = { "dmitri", "eva" },
    policy = "round_robin",
    options = { timeout = "30s" },
    allowed = { "available", "busy" },
}
