-- Follow-up work: a caller who hangs up before support answers is called back. The task
-- waits in the task list (GET /v1/tasks) until someone pushes "done" or "no_answer"; after
-- no answer it opens again an hour later.
local on, task, set, wait, link, finish =
    workflows.on, workflows.task, workflows.set, workflows.wait, workflows.link, workflows.finish

workflows.define {
    id = "callback",
    description = "Call back a customer who hung up before anyone answered",
    stages = {
        on("start", task { title = "Call the customer back", buttons = { "done", "no_answer" } }),
        on("button:done", set("callback", "reached"), finish("called back")),
        on("button:no_answer", set("callback", "no answer"), wait("1h", "retry")),
        on("timer:retry", link("start")),
    },
}
