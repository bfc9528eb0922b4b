-- Team timings: wrap-up after each conversation, the pause after a missed
-- offer, and what happens after too many misses in a row.
teams.define {
    id = "support",
    wrap_up = "30s",          -- Post-processing after each conversation
    no_answer_delay = "15s",  -- Missed, after an offer timed out
    max_no_answer = 3,        -- three misses in a row ...
    on_max_no_answer = { pause = "no_answer" }, -- ... and the agent is paused
}

teams.define {
    id = "sales",
    wrap_up = "1m",
    on_miss = "inactive",     -- a missed offer sets the presence to Inactive
}

-- The open line's agents answer chats; no wrap-up, no penalty for a miss.
teams.define { id = "line" }

-- Availability follows the working-time tracker: an agent who has not
-- started the work day is not available (otherwise: being online).
agents.track_work_day(true)
