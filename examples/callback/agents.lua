-- The people of the callback story: two agents on the phones, and Bo in the back office, who
-- works the callback tasks.
agents.define { id = "olga", name = "Olga", email = "olga@example.com" }
agents.define { id = "ivan", name = "Ivan", email = "ivan@example.com" }
agents.define { id = "bo", name = "Bo", email = "bo@example.com" }

queues.define {
    id = "support",
    name = "Support",
    agents = { "olga", "ivan" },
    policy = "ring_all",
    max_wait = "10m",
    -- A caller who hung up, or waited too long, gets a call back.
    workflows = { abandoned = "callback", max_wait = "callback" },
}
