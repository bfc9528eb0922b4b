-- Queues: open lines and services, each with an ordered agent list and a policy.

-- The open line: chats go to Olga first; if she does not answer within 12
-- hours, to Ivan, who stands in for her. When Olga is on vacation or has not
-- started her work day, Ivan gets the chat at once, and a chat offered to her
-- moves on the moment she stops being available. Open-line agents answer in
-- "ready" status, not call-center mode. When both have been tried, the
-- customer keeps waiting (the list starts over when one of them can take it)
-- and Ivan is told by email.
queues.define {
    id = "whatsapp_line",
    name = "WhatsApp line",
    agents = { "olga", "ivan" },
    policy = "strictly_in_order",
    options = { pass_after = "12h", check_availability = true },
    statuses = { "ready", "callcenter" },
    on_exhausted = "wait",
    standby = "line_exhausted", -- see standby.lua
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
