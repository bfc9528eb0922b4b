--!strict
-- rota.test: what a `*_test.lua` file drives the rules under test with, on virtual time.
--
-- Every `it` case gets a fresh engine loaded with the rules of its folder, the clock
-- at 2026-01-05 09:00 UTC (a Monday) unless the case sets it, every agent signed out and
-- nothing queued. Messages standby rules would send are captured, not sent.
--
--   local test = require("rota.test")
--   describe("service desk", function()
--       before_each(function() test.ready("pia") end)
--       it("rings Pia first", function()
--           local call = test.arrive("service_desk", { caller = { name = "Kari" } })
--           test.expect_offer(call, "pia")
--       end)
--   end)
--
-- Expectations fail with what was expected and what was found, at the line of the test
-- that called them.

local host = require("rota.test.host")

local test = {}

-- ------------------------------------------------------------------ showing values

local function show(value: any, depth: number?): string
    local d = depth or 0
    local kind = type(value)
    if kind == "string" then
        return string.format("%q", value)
    elseif kind ~= "table" then
        return tostring(value)
    elseif d > 3 then
        return "{...}"
    end
    local n = #value
    local parts = {}
    if n > 0 then
        for i = 1, n do
            table.insert(parts, show(value[i], d + 1))
        end
    else
        local keys = {}
        for k in value do
            table.insert(keys, k)
        end
        table.sort(keys, function(a, b)
            return tostring(a) < tostring(b)
        end)
        for _, k in keys do
            table.insert(parts, tostring(k) .. " = " .. show(value[k], d + 1))
        end
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
end
test.show = show

--- A value as readable Luau, a line per field and indented (for `print(test.inspect(x))`):
--- the list part and then the keys in order, strings quoted, a table met again inside
--- itself shown as `<cycle>`, and tables deeper than `depth` (6 by default) as `{...}`.
function test.inspect(value: any, depth: number?): string
    local limit = depth or 6
    local out = {}
    local open = {}
    local function key(k: any): string
        if type(k) == "string" and string.find(k, "^[%a_][%w_]*$") then
            return k
        end
        return "[" .. (if type(k) == "string" then string.format("%q", k) else tostring(k)) .. "]"
    end
    local function walk(v: any, indent: string, d: number)
        if type(v) == "string" then
            table.insert(out, string.format("%q", v))
            return
        elseif type(v) ~= "table" then
            table.insert(out, tostring(v))
            return
        elseif open[v] then
            table.insert(out, "<cycle>")
            return
        elseif next(v) == nil then
            table.insert(out, "{}")
            return
        elseif d >= limit then
            table.insert(out, "{...}")
            return
        end
        open[v] = true
        local inner = indent .. "    "
        table.insert(out, "{\n")
        local n = #v
        for i = 1, n do
            table.insert(out, inner)
            walk(v[i], inner, d + 1)
            table.insert(out, ",\n")
        end
        local keys = {}
        for k in v do
            if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
                table.insert(keys, k)
            end
        end
        table.sort(keys, function(a, b)
            return tostring(a) < tostring(b)
        end)
        for _, k in keys do
            table.insert(out, inner .. key(k) .. " = ")
            walk(v[k], inner, d + 1)
            table.insert(out, ",\n")
        end
        table.insert(out, indent .. "}")
        open[v] = nil
    end
    walk(value, "", 0)
    return table.concat(out)
end

local function same(a: any, b: any): boolean
    if type(a) ~= "table" or type(b) ~= "table" then
        return a == b
    end
    for k, v in a do
        if not same(v, b[k]) then
            return false
        end
    end
    for k in b do
        if a[k] == nil then
            return false
        end
    end
    return true
end

-- Fails the test at the line of the test file that called the expectation.
local function fail(message: string)
    host.fail(message)
end

--- Fails unless `actual` equals `expected` (tables compared deeply).
function test.eq(actual: any, expected: any, what: string?)
    if not same(actual, expected) then
        fail(string.format("%sexpected %s, got %s", what and (what .. ": ") or "", show(expected), show(actual)))
    end
end

-- ------------------------------------------------------------------ time

--- Sets the clock to a local date and time (`"2026-11-23 14:00"`) in `zone` (UTC by default),
--- or to an RFC 3339 instant. Before anything has happened it may go back; after, only forward,
--- firing the timers due on the way.
function test.at(time: string, zone: string?): string
    return host.act("at", { at = time, zone = zone })
end

--- Lets `duration` (`"20s"`, `"1h30m"`) pass, firing every timer due on the way, in order.
function test.advance(duration: string): string
    return host.act("advance", { by = duration })
end

--- The clock's reading, RFC 3339.
function test.now(): string
    return host.act("now", {})
end

-- ------------------------------------------------------------------ agents

local function input(kind: string, fields: any)
    return host.act("input", { [kind] = fields })
end

--- Signed in, in call-center mode, work day started: ready for offers.
function test.ready(agent: string)
    input("sign_in", { agent = agent })
    input("set_status", { agent = agent, status = "callcenter" })
    input("start_work_day", { agent = agent })
end

function test.sign_in(agent: string)
    input("sign_in", { agent = agent })
end

function test.sign_out(agent: string)
    input("sign_out", { agent = agent })
end

--- `"dnd"`, `"ready"` or `"callcenter"`.
function test.status(agent: string, status: string)
    input("set_status", { agent = agent, status = status })
end

--- A presence id (`"available"`, or one the rules define).
function test.presence(agent: string, presence: string)
    input("set_presence", { agent = agent, presence = presence })
end

function test.pause(agent: string, cause: string)
    input("pause", { agent = agent, cause = cause })
end

function test.resume(agent: string)
    input("resume", { agent = agent })
end

function test.start_work_day(agent: string)
    input("start_work_day", { agent = agent })
end

function test.end_work_day(agent: string)
    input("end_work_day", { agent = agent })
end

--- Replaces the agent's vacations: a list of `{ from, to }` pairs, each RFC 3339 or a local
--- `"2026-01-05 08:00"` in `zone` (by default the agent's `time_zone`, else UTC).
function test.vacations(agent: string, periods: { { string } }, zone: string?)
    host.act("vacations", { agent = agent, periods = periods, zone = zone })
end

function test.dismiss(agent: string, dismissed: boolean?)
    input("set_dismissed", { agent = agent, dismissed = dismissed ~= false })
end

--- Changes the agent's record: `{ name, email, phone, time_zone, skills, ... }`.
function test.update_agent(agent: string, record: { [string]: any })
    input("update_agent", { agent = agent, record = record })
end

--- The agent as the API shows it: `state`, `status`, `presence`, `base`, `counters`, ...
function test.agent(agent: string): { [string]: any }
    return host.act("agent", { id = agent })
end

-- ------------------------------------------------------------------ conversations

--- A conversation arrives in `queue`; `data` may give `id` (by default `c1`, `c2`, ...),
--- `caller` and `service` (`{ name, number, sip }`), `channel`, `requires` and `attributes`.
--- Returns its id.
function test.arrive(queue: string, data: { [string]: any }?): string
    local new = table.clone(data or {})
    new.queue = queue
    return host.act("arrive", new)
end

--- `agent` accepts the conversation offered to them; without `agent`, whoever it is offered
--- to (an error when it rings for several).
function test.accept(conversation: string, agent: string?)
    input("accept", { conversation = conversation, agent = agent })
end

--- `agent` declines the offer; without `agent`, whoever it is offered to.
function test.decline(conversation: string, agent: string?)
    input("decline", { conversation = conversation, agent = agent })
end

--- Changes what a waiting conversation is routed by: `attributes` to set, `requires`
--- (replacing the skills it needs) and `priority`. Its policy decides again at once.
function test.update(
    conversation: string,
    changes: { attributes: { [string]: any }?, requires: { [string]: number }?, priority: number? }
)
    input("update_conversation", {
        conversation = conversation,
        attributes = changes.attributes,
        requires = changes.requires,
        priority = changes.priority,
    })
end

function test.abandon(conversation: string)
    input("abandon", { conversation = conversation })
end

function test.close(conversation: string)
    input("close", { conversation = conversation })
end

--- Raises the custom event `name` (`custom:name` to standby rules) about a conversation.
function test.raise(conversation: string, name: string)
    input("raise", { conversation = conversation, event = name })
end

--- The conversation as the API shows it, plus `offered`: the agents it is offered to now.
function test.conversation(conversation: string): { [string]: any }
    return host.act("conversation", { id = conversation })
end

--- The messages standby rules made so far, optionally only those matching `filter`
--- (`to`, `channel`, `kind`, `conversation`, `rule`, `event`). Each has `to`, `address`,
--- `channel`, `kind`, `conversation`, `rule`, `event`, `subject`, `email` and `sms`.
local NOTIFICATION_FIELDS = table.freeze({
    to = true, address = true, channel = true, kind = true, conversation = true, rule = true,
    event = true, subject = true, email = true, sms = true, body = true,
})

function test.notifications(filter: { [string]: any }?): { { [string]: any } }
    for k in filter or {} do
        if not NOTIFICATION_FIELDS[k] then
            -- A misspelt field would match nothing and pass an expect_no_notification silently.
            error(string.format("notifications: unknown filter field `%s` (one of: to, address, channel, kind, "
                .. "conversation, rule, event, subject, email, sms, body)", tostring(k)), 2)
        end
    end
    local out = {}
    for _, n in host.act("notifications", {}) do
        local keep = true
        for k, v in filter or {} do
            if k == "body" then
                keep = keep and string.find((n.email or "") .. "\n" .. (n.sms or ""), v, 1, true) ~= nil
            else
                keep = keep and n[k] == v
            end
        end
        if keep then
            table.insert(out, n)
        end
    end
    return out
end

--- Every update so far, a line each, as `rota simulate` prints them.
function test.timeline(): { string }
    return host.act("timeline", {})
end

-- ------------------------------------------------------------------ expectations

--- The conversation is offered to exactly `agents` now (an id, a list, or nil for nobody).
function test.expect_offer(conversation: string, agents: (string | { string })?)
    local want = if agents == nil then {} elseif type(agents) == "string" then { agents } else agents
    local got = test.conversation(conversation).offered
    table.sort(want)
    table.sort(got)
    if not same(got, want) then
        fail(string.format("%s: expected an offer to %s, got %s", conversation, show(want), show(got)))
    end
end

--- The conversation's status (`queued`, `offered`, `assigned`, `closed`, ...).
function test.expect_status(conversation: string, status: string)
    local got = test.conversation(conversation).status
    if got ~= status then
        fail(string.format("%s: expected status %q, got %q", conversation, status, got))
    end
end

--- Each field given matches the agent's (`state`, `status`, `presence`, `base`, `pause_cause`, ...).
function test.expect_agent(agent: string, fields: { [string]: any })
    local a = test.agent(agent)
    for k, want in fields do
        if not same(a[k], want) then
            fail(string.format("agent %s: expected %s = %s, got %s", agent, k, show(want), show(a[k])))
        end
    end
end

--- The latest decision about the conversation skipped `agent`, for `reason` when given.
function test.expect_skipped(conversation: string, agent: string, reason: string?)
    local traces = test.conversation(conversation).traces
    local last = traces[#traces]
    if last == nil then
        fail(string.format("%s: expected %s to be skipped, but no decision was made", conversation, agent))
    end
    for _, s in last.skipped or {} do
        if s.agent == agent then
            if reason ~= nil and s.reason ~= reason then
                fail(string.format("%s: expected %s skipped for %q, got %q", conversation, agent, reason, s.reason))
            end
            return
        end
    end
    fail(string.format("%s: expected %s to be skipped; the last decision skipped %s", conversation, agent, show(last.skipped or {})))
end

local function describe_all(list: { { [string]: any } }): string
    if #list == 0 then
        return "none"
    end
    local lines = {}
    for _, n in list do
        table.insert(lines, string.format("\n    %s %s to %s by %s: %q", n.conversation, n.kind, n.to, n.channel, n.subject))
    end
    return table.concat(lines)
end

--- A message matching `filter` was made (see `notifications`; `body` is a piece of the
--- email or SMS text). Returns the first that matches.
function test.expect_notification(filter: { [string]: any }): { [string]: any }
    local found = test.notifications(filter)
    if #found == 0 then
        fail(string.format("expected a notification %s; made: %s", show(filter), describe_all(test.notifications())))
    end
    return found[1]
end

--- No message matching `filter` was made.
function test.expect_no_notification(filter: { [string]: any }?)
    local found = test.notifications(filter)
    if #found > 0 then
        fail(string.format("expected no notification %s; made: %s", show(filter or {}), describe_all(found)))
    end
end

-- ------------------------------------------------------------------ workflows

--- Sets the conversation on a workflow (what a queue's `workflows` or `workflows.start` does).
function test.start_workflow(conversation: string, workflow: string)
    input("start_workflow", { conversation = conversation, workflow = workflow })
end

--- The open tasks, oldest first (of one conversation when given). Each has `id`, `title`,
--- `buttons`, `workflow`, `instance`, `stage`, `event`, `conversation`, `opened` and `age_seconds`.
function test.tasks(conversation: string?): { { [string]: any } }
    local out = {}
    for _, t in host.act("tasks", {}) do
        if conversation == nil or t.conversation == conversation then
            table.insert(out, t)
        end
    end
    return out
end

--- The workflow instances of a conversation, oldest first, each with its `status`
--- (`running`, `flagged`, `finished`), `stage`, `event`, `note` and `history`.
function test.workflows(conversation: string): { { [string]: any } }
    return host.act("workflows", { conversation = conversation })
end

local function describe_tasks(list: { { [string]: any } }): string
    if #list == 0 then
        return "none"
    end
    local lines = {}
    for _, t in list do
        local buttons = table.concat(t.buttons, " | ")
        table.insert(lines, string.format("\n    task %d on %s, stage %d: %q [%s]", t.id, t.conversation, t.stage, t.title, buttons))
    end
    return table.concat(lines)
end

--- Pushes `button` on the conversation's open task that has it (`by` is who, for the history).
function test.push(conversation: string, button: string, by: string?)
    local open = test.tasks(conversation)
    for _, t in open do
        if table.find(t.buttons, button) then
            input("push_button", { task = t.id, button = button, by = by })
            return
        end
    end
    fail(string.format("%s: no open task has a button %q; open tasks: %s", conversation, button, describe_tasks(open)))
end

--- Resolves a flagged instance: it goes on at the stage of `event`, or finishes without one.
function test.resolve(instance: number, event: string?)
    input("resolve_workflow", { instance = instance, event = event })
end

--- An open task on the conversation matches each field given (`title`, `stage`, `event`,
--- `buttons`, `workflow`). Returns it.
function test.expect_task(conversation: string, fields: { [string]: any }?): { [string]: any }
    local open = test.tasks(conversation)
    for _, t in open do
        local keep = true
        for k, v in fields or {} do
            keep = keep and same(t[k], v)
        end
        if keep then
            return t
        end
    end
    fail(string.format("%s: expected an open task %s; open tasks: %s", conversation, show(fields or {}), describe_tasks(open)))
    return {}
end

--- The conversation has no open task.
function test.expect_no_task(conversation: string)
    local open = test.tasks(conversation)
    if #open > 0 then
        fail(string.format("%s: expected no open task; open tasks: %s", conversation, describe_tasks(open)))
    end
end

--- The conversation's latest instance of `workflow` has `status` (`running`, `flagged`,
--- `finished`). Returns the instance.
function test.expect_workflow(conversation: string, workflow: string, status: string): { [string]: any }
    local latest = nil
    for _, i in test.workflows(conversation) do
        if i.workflow == workflow then
            latest = i
        end
    end
    if latest == nil then
        fail(string.format("%s: expected workflow %q %s, but it was never set on it", conversation, workflow, status))
        return {}
    end
    if latest.status ~= status then
        fail(string.format("%s: expected workflow %q %s, got %s (%s)", conversation, workflow, status, latest.status, latest.note or latest.event))
    end
    return latest
end

return test
