-- The LUCS story's people. Pia answers the service desk; Dan and Sofie take
-- turns on standby duty and are alerted when Pia misses a call.
agents.define {
    id = "pia", name = "Pia Hansen", team = "desk",
    email = "pia@example.com", phone = "+4790000001", time_zone = "Europe/Oslo",
}
agents.define {
    id = "dan", name = "Dan Berg", team = "desk",
    email = "dan@example.com", phone = "+4790000002", time_zone = "Europe/Oslo",
}
agents.define {
    id = "sofie", name = "Sofie Lund", team = "desk",
    email = "sofie@example.com", phone = "+4790000003", time_zone = "Europe/Oslo",
}

-- A missed offer keeps Pia away for 10 seconds before the call rings her again.
teams.define { id = "desk", no_answer_delay = "10s" }
