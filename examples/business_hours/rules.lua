-- Business hours: support answers on weekdays 08:00-16:00 Oslo time, except on
-- holidays. Outside those hours callers go to the voicemail line, where the
-- night agent takes them on weekdays and the weekend agent on weekends. The
-- host evaluates the hours in their time zone: on 29 March 2026 Oslo moves to
-- summer time, and the office still opens at 08:00 on the wall clock.
hours.define {
    id = "office",
    time_zone = "Europe/Oslo",
    weekly = {
        mon = { "08:00-16:00" },
        tue = { "08:00-16:00" },
        wed = { "08:00-16:00" },
        thu = { "08:00-16:00" },
        fri = { "08:00-16:00" },
    },
    holidays = { "2026-04-02", "2026-04-03", "2026-04-06" }, -- Easter
    calendar = "holidays.ics", -- yearly holidays, exported from a calendar tool
}

agents.define { id = "anna", time_zone = "Europe/Oslo" }
agents.define { id = "night" }
agents.define { id = "weekend" }

queues.define {
    id = "support",
    agents = { "anna" },
    policy = "longest_idle",
    options = { timeout = "30s" },
    hours = "office",
    -- Outside the hours, arrivals and callers still waiting at closing move on.
    after_hours = { overflow = "voicemail" },
}

-- Who takes the voicemail line depends on the local weekday.
policies.register("night_or_weekend", {
    decide = function(ctx)
        local day = time.localtime(ctx.now, "Europe/Oslo").weekday
        local want = if day == "sat" or day == "sun" then "weekend" else "night"
        for _, a in ctx.candidates do
            if a.id == want and not a.blocked then
                return policies.offer(a, 60)
            end
        end
        return policies.wait()
    end,
})

queues.define { id = "voicemail", agents = { "night", "weekend" }, policy = "night_or_weekend" }
