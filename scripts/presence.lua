-- Presences agents can pick, beyond the built-in Available, Busy, Busy - DND,
-- Away and Offline. Routing only looks at the base status each one maps to.
presence.define { id = "training", text = "Away - in training", base = "away" }
presence.define { id = "meeting", text = "In a meeting", base = "busy" }
presence.define { id = "back_office", text = "Back office work", base = "busy_dnd" }

-- What an agent shows right after signing in.
presence.default("available")

-- Causes an agent can give for a pause (the "Pause" state of call-center mode).
presence.pause_cause { id = "lunch", text = "Lunch" }
presence.pause_cause { id = "coffee", text = "Coffee break" }
presence.pause_cause { id = "no_answer", text = "Missed too many offers" }
