-- The callback workflow: a missed call opens a task "call the customer back" in the back
-- office. "done" finishes it; "no_answer" waits an hour and opens the task again.
local on, task, notify, set, wait, link, finish =
    workflows.on, workflows.task, workflows.notify, workflows.set, workflows.wait, workflows.link, workflows.finish

templates.define {
    id = "callback_waiting",
    subject = "Call back {{ caller.name or caller.number }}",
    email = [[<p>{{ caller.name or "A customer" }} ({{ caller.number }}) called {{ queue.name }}
and nobody answered. The callback task is in the task list.</p>]],
}

workflows.define {
    id = "callback",
    description = "Call back a customer nobody answered",
    stages = {
        on("start",
            task { title = "Call the customer back", buttons = { "done", "no_answer" } },
            notify { template = "callback_waiting", channel = "email", to = { agents = { "bo" } } }),
        on("button:done",
            set("callback", "reached"),
            finish("called back")),
        on("button:no_answer",
            set("callback", "no answer"),
            wait("1h", "retry")),
        on("timer:retry",
            link("start")),
    },
}
