//! Every kind of broken script is rejected with file:line and a message that says what to
//! fix; nothing of a rejected folder is used. The cases are data: files in, diagnostics out.

use crate::common;

use common::Scratch;
use rota::script::{check, Limits};

const AGENTS: &str = "agents.define { id = \"a1\" }\nagents.define { id = \"a2\" }\n";
/// The same agents with an email address and a phone number, for cases about messages.
const CONTACTS: &str = "agents.define { id = \"a1\", email = \"a1@example.com\", phone = \"+4711111111\" }\n\
                        agents.define { id = \"a2\", email = \"a2@example.com\", phone = \"+4722222222\" }\n";

/// Files of a scratch scripts folder: (name, contents).
type Files = &'static [(&'static str, &'static str)];

/// A workflow file: the names its stages use, then the given lines (so they start at line 2).
macro_rules! wf {
    ($($line:literal),* $(,)?) => {
        concat!(
            "local on, task, finish, wait, link, set = workflows.on, workflows.task, workflows.finish, workflows.wait, workflows.link, workflows.set\n",
            $($line, "\n"),*
        )
    };
}

/// (case name, files, expected diagnostics as `file:line: fragment of the message`)
const CASES: &[(&str, Files, &[&str])] = &[
    (
        "workflow: a leg that ends without finish or link, with the path of stages",
        &[(
            "w.lua",
            wf!(
                "workflows.define { id = \"cb\", stages = {",
                "  on(\"start\", task { title = \"Call back\", buttons = { \"done\", \"no_answer\" } }),",
                "  on(\"button:done\", finish()),",
                "  on(\"button:no_answer\", set(\"tries\", 1)),",
                "} }",
            ),
        )],
        &["w.lua:5: workflow `cb`: unlinked end: the leg start (line 3) → button:no_answer (line 5) ends without `finish` or `link`"],
    ),
    (
        "workflow: a button no stage handles",
        &[(
            "w.lua",
            wf!(
                "workflows.define { id = \"cb\", stages = {",
                "  on(\"start\", task { title = \"Call back\", buttons = { \"done\", \"later\" } }),",
                "  on(\"button:done\", finish()),",
                "} }",
            ),
        )],
        &["w.lua:3: workflow `cb`: unlinked end: nothing handles `button:later`, so the leg start (line 3) → button:later ends there"],
    ),
    (
        "workflow: a link to an unknown event, and an unreachable stage",
        &[(
            "w.lua",
            wf!(
                "workflows.define { id = \"cb\", stages = {",
                "  on(\"start\", task { title = \"t\", buttons = { \"done\", \"retry\" } }),",
                "  on(\"button:done\", finish()),",
                "  on(\"button:retry\", wait(\"1h\", \"again\")),",
                "  on(\"timer:again\", link(\"strat\")),",
                "  on(\"timer:never\", finish()),",
                "} }",
            ),
        )],
        &[
            "w.lua:6: workflow `cb`: link to unknown event `strat` (did you mean `start`?) (leg start (line 3) → button:retry (line 5) → timer:again (line 6))",
            "w.lua:7: workflow `cb`: stage `timer:never` is unreachable: no wait it can reach starts timer `never`",
        ],
    ),
    (
        "workflow: a cycle with no way out",
        &[(
            "w.lua",
            wf!(
                "workflows.define { id = \"cb\", stages = {",
                "  on(\"start\", task { title = \"t\", buttons = { \"again\" } }),",
                "  on(\"button:again\", wait(\"1h\", \"later\")),",
                "  on(\"timer:later\", link(\"start\")),",
                "} }",
            ),
        )],
        &["w.lua:3: workflow `cb`: cycle with no way out: start (line 3) → button:again (line 4) → timer:later (line 5) → start (line 3) never reaches `finish`"],
    ),
    (
        "workflow: no start, two stages for one event, dead actions, bad events and arguments",
        &[(
            "w.lua",
            wf!(
                "workflows.define { id = \"a\", stages = { on(\"button:x\", finish()) } }",
                "workflows.define { id = \"b\", stages = {",
                "  on(\"start\", finish(), set(\"x\", 1)),",
                "  on(\"start\", finish()),",
                "  on(\"custom:vip\", task { title = \"t\", buttons = { \"ok\" } }, link(\"start\")),",
                "  on(\"button:ok\", finish()),",
                "} }",
                "workflows.define { id = \"c\", stages = { on(\"button\", finish()) } }",
                "workflows.define { id = \"d\", stages = { on(\"start\", wait(\"12x\", \"t\")) } }",
                "workflows.define { id = \"e\", stages = { on(\"start\", \"finish\") } }",
            ),
        )],
        &[
            "w.lua:2: workflow `a` has no `start` stage",
            "w.lua:4: workflow `b`: stage `start`: actions after `finish` never run",
            "w.lua:5: workflow `b`: event `start` has two stages (the first at line 4)",
            "w.lua:6: workflow `b`: stage `custom:vip`: the task is cancelled as soon as it starts: `link` at line 6 leaves the stage",
            "w.lua:9: workflows.on: unknown event `button` (events: start, button:NAME",
            "w.lua:10: workflows.wait: ",
            "w.lua:11: workflows.on(\"start\", ...): argument 2 must be an action",
        ],
    ),
    (
        "workflow: what its actions and the queues that start it name",
        &[
            ("a.lua", "agents.define { id = \"bo\", unit = \"north\" }\nagents.define { id = \"al\" }\n"),
            (
                "w.lua",
                wf!(
                    "workflows.define { id = \"cb\", stages = {",
                    "  on(\"start\", workflows.notify { template = \"nope\", channel = \"email\", to = { agents = { \"bo\", \"zed\" } } }, workflows.standby(\"ghost\"), finish()),",
                    "} }",
                    "queues.define { id = \"q\", agents = { \"al\" }, policy = \"ring_all\", workflows = { abandoned = \"cb\", missed = \"nope_wf\", weird = \"cb\" } }",
                ),
            ),
        ],
        &[
            "w.lua:3: workflow `cb` (unit `default`) uses agent `bo` of unit `north`",
            "w.lua:3: workflow `cb`: unknown agent `zed`",
            "w.lua:3: workflow `cb` sends email to agent `bo`, who has no email address (`email`)",
            "w.lua:3: workflow `cb` uses template `nope`, which is not defined",
            "w.lua:3: workflow `cb` uses standby rule `ghost`, which is not defined",
            "w.lua:5: queue `q`: workflows: unknown event `weird`",
            "w.lua:5: queue `q` uses workflow `nope_wf`, which is not defined",
        ],
    ),
    (
        "syntax error",
        &[("a.lua", "agents.define { id = \"a1\" \nqueues.define {")],
        &["a.lua:2: Expected"],
    ),
    (
        "unknown policy name, with a suggestion",
        &[("a.lua", AGENTS), ("q.lua", "\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"round_robbin\" }\n")],
        &["q.lua:2: queue `q`: unknown policy `round_robbin` (did you mean `round_robin`?)"],
    ),
    (
        "unknown agent in a queue",
        &[("a.lua", AGENTS), ("q.lua", "queues.define { id = \"q\", agents = { \"a1\", \"zed\" }, policy = \"ring_all\" }")],
        &["q.lua:1: queue `q`: unknown agent `zed`"],
    ),
    (
        "a queue lists an agent, or overflows to a queue, of another organization unit",
        &[
            ("a.lua", "agents.define { id = \"n1\", unit = \"north\" }\nagents.define { id = \"s1\", unit = \"south\" }"),
            (
                "q.lua",
                "queues.define { id = \"nq\", unit = \"north\", agents = { \"n1\", \"s1\" }, policy = \"ring_all\", on_max_wait = \"sq\", max_wait = \"1m\" }\nqueues.define { id = \"sq\", unit = \"south\", agents = { \"s1\" }, policy = \"ring_all\" }",
            ),
        ],
        &[
            "q.lua:1: queue `nq` (unit `north`) lists agent `s1` of unit `south`",
            "q.lua:1: queue `nq` (unit `north`) overflows to queue `sq` of unit `south`",
        ],
    ),
    (
        "unknown presences: default, base status, team escalation",
        &[(
            "p.lua",
            "presence.default(\"lunchbreak\")\npresence.define { id = \"x\", base = \"sleepy\" }\nteams.define { id = \"t\", max_no_answer = 2, on_max_no_answer = { presence = \"gone\" } }\n",
        )],
        &[
            "p.lua:2: presence.define `x`: unknown base status `sleepy`",
            "p.lua:1: default presence: presence `lunchbreak` is not defined",
            "p.lua:3: team `t`: on_max_no_answer names unknown presence `gone`",
        ],
    ),
    (
        "bad durations",
        &[
            ("a.lua", AGENTS),
            (
                "q.lua",
                "teams.define { id = \"t\", wrap_up = \"12x\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"strictly_in_order\", options = { pass_after = \"12x\" } }\n",
            ),
        ],
        &[
            "q.lua:1: teams.define: field `wrap_up`: bad duration `12x`",
            "q.lua:2: queue `q`: option `pass_after` of policy `strictly_in_order`: bad duration `12x`",
        ],
    ),
    (
        "zero, negative, NaN and overflowing durations",
        &[
            ("a.lua", AGENTS),
            (
                "q.lua",
                concat!(
                    "queues.define { id = \"q1\", agents = { \"a1\" }, policy = \"ring_all\", retry_after_error = 0 }\n",
                    "queues.define { id = \"q2\", agents = { \"a1\" }, policy = \"ring_progressively\", options = { step = 0 } }\n",
                    "queues.define { id = \"q3\", agents = { \"a1\" }, policy = \"ring_all\", max_wait = -1 }\n",
                    "queues.define { id = \"q4\", agents = { \"a1\" }, policy = \"longest_idle\", options = { timeout = \"0s\" } }\n",
                    "queues.define { id = \"q5\", agents = { \"a1\" }, policy = \"ring_all\", max_wait = 0 / 0 }\n",
                    "queues.define { id = \"q6\", agents = { \"a1\" }, policy = \"longest_idle\", options = { timeout = 1e16 } }\n",
                    "teams.define { id = \"t\", wrap_up = \"400d\" }\n",
                ),
            ),
        ],
        &[
            "q.lua:1: queues.define: field `retry_after_error` must be longer than zero",
            "q.lua:2: queue `q2`: option `step` of policy `ring_progressively`: a duration option must be longer than zero",
            "q.lua:3: queues.define: field `max_wait`: a duration cannot be negative",
            "q.lua:4: queue `q4`: option `timeout` of policy `longest_idle`: a duration option must be longer than zero",
            "q.lua:5: queues.define: field `max_wait`: a duration must be a number of seconds, got NaN",
            "q.lua:6: queue `q6`: option `timeout` of policy `longest_idle`: a duration can be at most 366d",
            "q.lua:7: teams.define: field `wrap_up`: duration `400d` is too long",
        ],
    ),
    (
        "capacities that are negative, fractional, huge, not numbers or contain themselves",
        &[(
            "c.lua",
            concat!(
                "teams.define {\n",
                "  id = \"t\",\n",
                "  capacity = { chat = -1, email = 2.5 },\n",
                "}\n",
                "agents.define { id = \"a1\", capacity = { voice = \"many\", sms = 1e300, fax = 0 / 0 } }\n",
                "local loop = {}\nloop.again = loop\n",
                "agents.define { id = \"a2\", capacity = { chat = loop } }\n",
            ),
        )],
        &[
            "c.lua:3: teams.define: field `capacity`: capacity of channel `chat` must be a whole number from 0 to 100 or \"exclusive\", got -1",
            "c.lua:3: teams.define: field `capacity`: capacity of channel `email` must be a whole number from 0 to 100 or \"exclusive\", got 2.5",
            "c.lua:5: agents.define: field `capacity`: capacity of channel `fax` must be a whole number",
            "c.lua:5: agents.define: field `capacity`: capacity of channel `sms` must be a whole number from 0 to 100 or \"exclusive\", got 1e+300",
            "c.lua:5: agents.define: field `capacity`: capacity of channel `voice` must be a whole number from 0 to 100 or \"exclusive\", got \"many\"",
            "c.lua:8: agents.define: field `capacity`: tables nested more than 64 deep (does a table contain itself?)",
        ],
    ),
    (
        "tables that contain themselves or nest too deep, in attributes and options",
        &[(
            "t.lua",
            concat!(
                "local loop = {}\nloop.again = loop\n",
                "local deep = {}\nfor _ = 1, 100000 do deep = { deep } end\n",
                "agents.define { id = \"a1\", attributes = { loop = loop } }\n",
                "agents.define { id = \"a2\", attributes = { deep = deep } }\n",
                "queues.define { id = \"q\", agents = { \"a1\" }, policy = \"ring_all\", options = { timeout = 30, extra = loop } }\n",
            ),
        )],
        &[
            "t.lua:5: agents.define: field `attributes`: tables nested more than 64 deep (does a table contain itself?)",
            "t.lua:6: agents.define: field `attributes`: tables nested more than 64 deep",
            "t.lua:7: queues.define: field `options`: tables nested more than 64 deep",
        ],
    ),
    (
        "what a message needs is checked at load: time zones, template filters and tests, addresses",
        &[(
            "n.lua",
            concat!(
                "agents.define { id = \"a1\", email = \"a1@example.com\", time_zone = \"Europe/Olso\" }\n",
                "agents.define { id = \"a2\" }\n",
                "templates.define { id = \"t1\", subject = \"{{ caller.name | shout }}\" }\n",
                "templates.define { id = \"t2\", subject = \"{% if caller.name is vip %}VIP{% endif %}\" }\n",
                "templates.define { id = \"t3\", subject = \"{{ conversation.id }}\", email = \"-\", sms = \"{{ conversation.id }}\" }\n",
                "queues.define { id = \"q\", agents = { \"a2\" }, policy = \"ring_all\" }\n",
                "standby.define { id = \"s\", on = \"missed\", notify = { agents = { \"a2\" } }, channels = { \"email\", \"sms\" }, template = \"t3\" }\n",
            ),
        )],
        &[
            "n.lua:1: agents.define: field `time_zone`: unknown time zone `Europe/Olso`",
            "n.lua:3: template `t1`, subject line 1: filter shout is unknown",
            "n.lua:4: template `t2`, subject line 1: test vip is unknown",
            "n.lua:7: standby rule `s` sends email to agent `a2`, who has no email address (`email`)",
            "n.lua:7: standby rule `s` sends sms to agent `a2`, who has no phone number (`phone`)",
        ],
    ),
    (
        "duplicate ids",
        &[(
            "d.lua",
            "agents.define { id = \"a1\" }\nagents.define { id = \"a1\" }\npresence.define { id = \"away\", base = \"away\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"ring_all\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"ring_all\" }\n",
        )],
        &[
            "d.lua:3: presence `away` is a built-in presence",
            "d.lua:2: agent `a1` is already defined",
            "d.lua:5: queue `q` is already defined",
        ],
    ),
    (
        "unknown field and wrong option type, all in one run",
        &[("a.lua", AGENTS), ("q.lua", "queues.define { id = \"q\", agents = { \"a1\" }, polcy = \"ring_all\", policy = \"ring_all\", options = { timeout = true, colour = 1 } }")],
        &[
            "q.lua:1: queues.define: unknown field `polcy` (did you mean `policy`?)",
            "q.lua:1: queue `q`: option `timeout` of policy `ring_all`: expected a duration, got true",
            "q.lua:1: queue `q`: policy `ring_all` has no option `colour` (it takes: timeout)",
        ],
    ),
    (
        "options checked against the policy",
        &[("a.lua", AGENTS), ("q.lua", "queues.define { id = \"q\", agents = { \"a1\" }, policy = \"ring_all\", options = { timeout = true, colour = 1 } }")],
        &[
            "q.lua:1: queue `q`: option `timeout` of policy `ring_all`: expected a duration, got true",
            "q.lua:1: queue `q`: policy `ring_all` has no option `colour` (it takes: timeout)",
        ],
    ),
    (
        "runtime error while loading",
        &[("a.lua", "local x = nil\n\nlocal y = x.field\n")],
        &["a.lua:3: attempt to index nil with 'field'"],
    ),
    (
        "require of a missing module and of the file system",
        &[("a.lua", "local m = require(\"lib.missing\")"), ("b.lua", "require(\"../../etc/passwd\")")],
        &["a.lua:1: module `lib.missing` not found", "b.lua:1: module `../../etc/passwd` not found"],
    ),
    (
        "a script that never finishes loading",
        &[("a.lua", "while true do end")],
        &["a.lua:1: CPU budget of"],
    ),
    (
        "inactive cannot be a custom presence's base or the default",
        &[("p.lua", "presence.define { id = \"ghost\", base = \"inactive\" }\npresence.default(\"inactive\")\n")],
        &[
            "p.lua:1: presence `ghost` cannot map to `inactive`",
            "p.lua:2: default presence: presence `inactive` is set by the system only",
        ],
    ),
    (
        "a policy registered twice and one without decide",
        &[("p.lua", "policies.register(\"ring_all\", { decide = function() end })\npolicies.register(\"mine\", { })\n")],
        &[
            "p.lua:1: policy `ring_all` is already registered (at stdlib/policies/ring_all.lua:6)",
            "p.lua:2: policies.register `mine`: field `decide` is required",
        ],
    ),
    (
        "business hours that cannot work, and queues naming hours wrongly",
        &[(
            "h.lua",
            "hours.define { id = \"office\", time_zone = \"Oslo\", weekly = { mon = { \"17:00-08:00\" }, fun = { \"08:00-16:00\" } }, holidays = { \"25.12.2026\" } }\n\
             hours.define { id = \"never\", time_zone = \"UTC\", weekly = {} }\n\
             agents.define { id = \"a\" }\n\
             queues.define { id = \"q\", agents = { \"a\" }, policy = \"ring_all\", hours = \"ofice\" }\n\
             queues.define { id = \"r\", agents = { \"a\" }, policy = \"ring_all\", after_hours = { overflow = \"q\" } }\n\
             queues.define { id = \"s\", agents = { \"a\" }, policy = \"ring_all\", hours = \"never\", after_hours = \"ring\" }\n\
             queues.define { id = \"t\", agents = { \"a\" }, policy = \"ring_all\", levels = { a = 0, b = 2 }, aging = { every = 0 } }\n",
        )],
        &[
            "h.lua:1: hours.define `office`: unknown time zone `Oslo`",
            "h.lua:1: hours.define `office`: weekly: `fun` is not a weekday",
            "h.lua:1: hours.define `office`: weekly.mon: `17:00-08:00` ends before it starts",
            "h.lua:1: hours.define `office`: holidays: `25.12.2026` is not a date like 2026-12-25",
            "h.lua:2: hours.define `never`: weekly gives no opening time",
            "h.lua:4: queue `q`: unknown hours `ofice`",
            "h.lua:5: queue `r`: after_hours needs hours",
            "h.lua:6: queues.define `s`: after_hours must be \"wait\"",
            "h.lua:7: queues.define `t`: levels.a must be a whole number from 1",
            "h.lua:7: queues.define `t`: aging must be { every = \"1m\", step = 1 }",
            "h.lua:7: queue `t`: levels names `b`, who is not in its agents",
        ],
    ),
    (
        "wrong types in definitions",
        &[("a.lua", "agents.define(\"a1\")\nagents.define { id = 7 }\nteams.define { id = \"t\", on_miss = \"cry\" }\n")],
        &[
            "a.lua:1: agents.define expects a table, got string",
            "a.lua:2: agents.define: field `id` must be a string, got integer",
            "a.lua:3: teams.define: on_miss must be \"missed\" or \"inactive\", got \"cry\"",
        ],
    ),
    (
        "a template with a syntax error, an unknown parameter, or one only clearing messages have",
        &[
            ("a.lua", CONTACTS),
            (
                "s.lua",
                "templates.define { id = \"t\", subject = \"{{ caller.nmae }}\", sms = \"{{ answered_by.name }}\" }\n\ntemplates.define { id = \"bad\", subject = \"ok\", email = \"<p>\\n{% if %}</p>\" }\nstandby.define { id = \"r\", on = \"missed\", notify = { agents = { \"a1\" } }, channels = { \"sms\", \"email\" }, template = \"t\" }",
            ),
        ],
        &[
            "s.lua:3: template `bad`, email line 2:",
            "s.lua:4: standby rule `r` sends email with template `t`, which has no email body (`email`)",
            "s.lua:1: template `t` (used as notification message by standby rule `r`): subject uses `caller.nmae`, which is not a parameter (`caller` has: name, number, sip)",
            "s.lua:1: template `t` (used as notification message by standby rule `r`): sms uses `answered_by.name`, which only a clearing message has",
        ],
    ),
    (
        "a removed template and standby rule, named with every place that still uses them",
        &[
            ("a.lua", CONTACTS),
            (
                "s.lua",
                "standby.define { id = \"r1\", on = \"missed\", notify = { agents = { \"a1\" } }, channels = \"sms\", template = \"gone\" }\nstandby.define { id = \"r2\", on = { \"abandoned\", \"custom:vip\" }, notify = { schedule = \"nobody\" }, channels = \"sms\", template = \"gone\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"ring_all\", standby = { \"r1\", \"dropped\" } }",
            ),
        ],
        &[
            "s.lua:3: queue `q` uses standby rule `dropped`, which is not defined",
            "s.lua:1: standby rule `r1` uses template `gone`, which is not defined (used by: standby rule `r1` at s.lua:1, standby rule `r2` at s.lua:2)",
            "s.lua:2: standby rule `r2` uses template `gone`, which is not defined (used by: standby rule `r1` at s.lua:1, standby rule `r2` at s.lua:2)",
            "s.lua:2: standby rule `r2` uses schedule `nobody`, which is not defined",
        ],
    ),
    (
        "standby across organization units, unknown events and channels, a bad schedule",
        &[
            ("a.lua", "agents.define { id = \"n1\", unit = \"north\" }\nagents.define { id = \"s1\", unit = \"south\", phone = \"+1\" }"),
            (
                "s.lua",
                "templates.define { id = \"t\", unit = \"south\", subject = \"x\", sms = \"y\" }\nstandby.define { id = \"r\", unit = \"north\", on = { \"mised\" }, notify = { agents = { \"s1\" } }, channels = { \"fax\" }, template = \"t\" }\nstandby.define { id = \"r2\", unit = \"north\", on = \"missed\", notify = { agents = { \"s1\" } }, channels = \"sms\", template = \"t\" }\nschedules.define { id = \"d\", time_zone = \"Mars/Olympus\", layers = { { rotation = { \"n1\" }, start = \"tomorrow\", shift = \"1d\" } } }",
            ),
        ],
        &[
            "s.lua:2: standby rule `r`: unknown event `mised` (did you mean `missed`?)",
            "s.lua:2: standby rule `r`: unknown channel `fax`",
            "s.lua:4: schedule `d`: unknown time zone `Mars/Olympus`",
            "s.lua:4: field `start`: `tomorrow` is not a local time",
            // `r` has problems of its own, and is still checked against the others in the same run.
            "s.lua:2: standby rule `r` (unit `north`) uses template `t` of unit `south`",
            "s.lua:2: standby rule `r` (unit `north`) uses agent `s1` of unit `south`",
            "s.lua:3: standby rule `r2` (unit `north`) uses template `t` of unit `south`",
            "s.lua:3: standby rule `r2` (unit `north`) uses agent `s1` of unit `south`",
        ],
    ),
    (
        // Each problem at the line of the field it is about, every problem in one run, nothing
        // repeated about a definition that failed (ann, cyd), and a suggestion for every name.
        "a multi-line folder: field lines, one run, no follow-ons, did you mean",
        &[(
            "rules.lua",
            r#"teams.define { id = "desk" }
agents.define { id = "ann", team = "desk", weight = "heavy" }
agents.define { id = "bob", team = "dsk" }
agents.define {
    id = "cyd",
    email = "cyd@example.com",
    time_zone = "Mars/Base",
}
queues.define {
    id = "q",
    agents = { "ann", "bobb", "cyd" },
    policy = "round_robn",
    standby = "alerts",
}
queues.define {
    id = "q2",
    agents = { "bob" },
    policy = "round_robin",
    max_wait = 0,
    on_max_wait = "qq",
}
templates.define { id = "missed", subject = "x", email = "y" }
standby.define {
    id = "alerts",
    on = "missed",
    notify = { agents = { "cyd" } },
    channels = "email",
    template = "missd",
}
schedules.define { id = "duty", time_zone = "Europe/Oslo", layers = { { rotation = { "bob" }, start = "2026-01-05 08:00", shift = "1d" } } }
standby.define { id = "s2", on = "missed", notify = { schedule = "dutty" }, channels = "email", template = "missed" }
"#,
        )],
        &[
            "rules.lua:2: agents.define: field `weight` must be a number, got string",
            "rules.lua:7: agents.define: field `time_zone`: unknown time zone `Mars/Base`",
            "rules.lua:3: agent `bob`: unknown team `dsk` (did you mean `desk`?)",
            "rules.lua:11: queue `q`: unknown agent `bobb` (did you mean `bob`?)",
            "rules.lua:12: queue `q`: unknown policy `round_robn` (did you mean `round_robin`?)",
            "rules.lua:19: queues.define: field `max_wait`",
            "rules.lua:20: queue `q2`: on_max_wait names unknown queue `qq` (did you mean `q`?)",
            "rules.lua:28: standby rule `alerts` uses template `missd`, which is not defined (did you mean `missed`?)",
            "rules.lua:31: standby rule `s2` uses schedule `dutty`, which is not defined (did you mean `duty`?)",
        ],
    ),
];

#[test]
fn every_broken_folder_is_rejected_with_file_and_line() {
    let mut failures = Vec::new();
    for (name, files, expected) in CASES {
        let dir = Scratch::new(files);
        let err = match check(&dir.0, &Limits::default().cpu_per_load(std::time::Duration::from_millis(200))) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without complaint"));
                continue;
            }
            Err(e) => e,
        };
        let got: Vec<String> = err.diagnostics.iter().map(|d| d.to_string()).collect();
        for want in *expected {
            if !got
                .iter()
                .any(|g| g.starts_with(want) || g.contains(want) && g.starts_with(&want[..want.find(": ").unwrap()]))
            {
                failures.push(format!("{name}: missing `{want}`\n    got: {got:#?}"));
            }
        }
        if got.len() != expected.len() {
            failures.push(format!("{name}: expected {} diagnostics, got {got:#?}", expected.len()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_check_command_prints_file_line_and_exits_1() {
    let dir = Scratch::new(&[
        ("a.lua", AGENTS),
        ("queues.lua", "\n\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"nope\" }\n"),
    ]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota")).arg("check").arg(&dir.0).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let expected = format!("{}:3: queue `q`: unknown policy `nope`", dir.0.join("queues.lua").display());
    assert_eq!(stdout.trim(), expected);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["check", "scripts"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8(out.stdout).unwrap().contains("ok (7 agents, 3 teams, 3 queues"));
}

#[test]
fn modules_in_subfolders_can_be_required() {
    let dir = Scratch::new(&[
        ("lib/people.lua", "return { \"a1\", \"a2\" }"),
        ("rules.lua", "local people = require(\"lib.people\")\nfor _, id in people do agents.define { id = id } end\nqueues.define { id = \"q\", agents = people, policy = \"longest_idle\" }"),
    ]);
    let rules = check(&dir.0, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.queues[0].agents, vec!["a1", "a2"]);
    assert_eq!(rules.queues[0].options["timeout"], 30.0);
}
