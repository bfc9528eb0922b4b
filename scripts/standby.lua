-- Standby duty for customer support: when a call is missed, abandoned or waits
-- too long, whoever is on duty is told by email and SMS; once someone answers,
-- they are told it is taken care of.

-- Bjørn and Carla take turns, a day each, handing over at 08:00 Oslo time.
schedules.define {
    id = "support_duty",
    time_zone = "Europe/Oslo",
    layers = {
        { rotation = { "bjorn", "carla" }, start = "2026-01-05 08:00", shift = "1d" },
    },
}

standby.define {
    id = "support_missed",
    on = { "missed", "abandoned", "max_wait" },
    notify = { schedule = "support_duty" },
    channels = { "email", "sms" },
    template = "support_missed",
    clearing = "support_taken",
}

templates.define {
    id = "support_missed",
    subject = "[{{ queue.name }}] {{ event.type }}: call from {{ caller.name or caller.number or 'unknown caller' }}",
    email = [[
<p>Hi {{ recipient.name }},</p>
<p>A call to <b>{{ queue.name }}</b> from {{ caller.name or "an unknown caller" }}
{% if caller.number %}({{ caller.number }}){% endif %} needs attention: {{ event.reason }}.</p>
<p>It has waited {{ conversation.waited | duration }} ({{ conversation.attempts }} offer(s) so far).
Time: {{ now | datetime("%Y-%m-%d %H:%M %Z") }}.</p>]],
    sms = "{{ queue.name }}: call from {{ caller.name or caller.number or 'unknown' }} needs attention ({{ event.type }}) at {{ now | datetime('%H:%M') }}",
}

templates.define {
    id = "support_taken",
    subject = "[{{ queue.name }}] Taken: call from {{ caller.name or caller.number or 'unknown caller' }}",
    email = [[
<p>Hi {{ recipient.name }},</p>
<p>{{ answered_by.name }} answered the call from {{ caller.name or caller.number or "the caller" }}
at {{ now | datetime("%H:%M %Z") }}. Nothing left to do.</p>]],
    sms = "{{ answered_by.name }} took the {{ queue.name }} call from {{ caller.name or caller.number or 'unknown' }}. Nothing to do.",
}

-- The open line: when Olga and Ivan have both been tried, Ivan hears of it.
standby.define {
    id = "line_exhausted",
    on = { "exhausted" },
    notify = { agents = { "ivan" } },
    channels = { "email" },
    template = "line_exhausted",
}

templates.define {
    id = "line_exhausted",
    subject = "[{{ queue.name }}] A chat from {{ caller.name or caller.number or 'a customer' }} is still waiting",
    email = [[
<p>Hi {{ recipient.name }},</p>
<p>A chat to <b>{{ queue.name }}</b> from {{ caller.name or "a customer" }} has been offered to
everyone on the line: {{ event.reason }}. It keeps waiting and goes to the first of you who can take it.</p>
<p>It has waited {{ conversation.waited | duration }}.</p>]],
}
