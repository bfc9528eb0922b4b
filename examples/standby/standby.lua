-- Standby duty: who is on duty, whom to alert about what, and what the messages say.

-- Dan and Sofie take turns, a week each, handing over on Monday at 09:00 Oslo
-- time (09:00 in summer and in winter alike). Sofie covers Christmas.
schedules.define {
    id = "standby_duty",
    time_zone = "Europe/Oslo",
    layers = {
        { rotation = { "dan", "sofie" }, start = "2026-11-02 09:00", shift = "7d" },
    },
    overrides = {
        { agent = "sofie", from = "2026-12-24 09:00", to = "2026-12-27 09:00" },
    },
}

standby.define {
    id = "missed_calls",
    on = { "missed", "abandoned" },
    notify = { schedule = "standby_duty" },
    channels = { "email", "sms" },
    template = "missed_call",
    clearing = "call_taken",
}

-- If an email cannot be delivered at all, the same person gets an SMS instead.
standby.define {
    id = "email_failed",
    on = "delivery_failed",
    notify = "recipient",
    channels = "sms",
    template = "missed_call",
}

templates.define {
    id = "missed_call",
    subject = "Missed call from {{ caller.name or caller.number }} on {{ queue.name }}",
    email = [[
<p>Hello {{ recipient.name }},</p>
<p>{{ caller.name or "A caller" }} ({{ caller.number }}) called {{ service.name or queue.name }}
at {{ now | datetime("%H:%M") }} and has waited {{ conversation.waited | duration }}:
{{ event.reason }}.</p>
<p>Please call back if nobody answers soon.</p>]],
    sms = "Missed call from {{ caller.name or caller.number }} ({{ caller.number }}) on {{ queue.name }} at {{ now | datetime('%H:%M') }}",
}

templates.define {
    id = "call_taken",
    subject = "Taken over: call from {{ caller.name or caller.number }}",
    email = [[
<p>Hello {{ recipient.name }},</p>
<p>{{ answered_by.name }} answered the call from {{ caller.name or caller.number }} at
{{ now | datetime("%H:%M") }}. Nothing to do.</p>]],
    sms = "{{ answered_by.name }} took the call from {{ caller.name or caller.number }}. Nothing to do.",
}
