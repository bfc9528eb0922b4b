-- Rules for rota, written in Luau (https://luau.org). `rota init` wrote this
-- file as a start: change it, then `rota check` and `rota test` it.
-- The reference: docs/lua/ in rota's repository, one page per namespace.

-- The people who answer (email and phone are where standby alerts go).
agents.define { id = "lena", name = "Lena Lund", email = "lena@example.com" }
agents.define { id = "omar", name = "Omar Said", email = "omar@example.com" }

-- A line that offers each call to Lena first and passes it to Omar after 30
-- seconds without an answer. Agents take calls once they are signed in, in
-- call-center mode and in their work day (`statuses` could add "ready").
queues.define {
    id = "hotline",
    name = "Hotline",
    agents = { "lena", "omar" },
    policy = "strictly_in_order",
    options = { pass_after = "30s" },
    standby = "missed_hotline",
}

-- When a call rings out, Omar hears of it by email (written to files in
-- rota-outbox/ until an SMTP server is configured in rota.toml).
templates.define {
    id = "missed",
    subject = "Missed hotline call from {{ caller.number or 'an unknown number' }}",
    email = "<p>The call waited {{ conversation.waited | duration }}: {{ event.reason }}.</p>",
}

standby.define {
    id = "missed_hotline",
    on = "missed",
    notify = { agents = { "omar" } },
    channels = "email",
    template = "missed",
}
