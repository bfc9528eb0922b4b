local test = require("rota.test")

-- Anna takes a call; the test's callers wait until she is done with it.
local function anna_busy()
    test.ready("anna")
    local first = test.arrive("billing")
    test.accept(first, "anna")
    return first
end

describe("waiting order", function()
    it("offers a VIP before callers who came earlier", function()
        local first = anna_busy()
        local early = test.arrive("general")
        local vip = test.arrive("general", { priority = 10 })
        test.close(first)
        test.expect_offer(vip, "anna")
        test.expect_status(early, "queued")
    end)

    it("offers the caller who has waited longest, whichever queue they wait in", function()
        local first = anna_busy()
        local billing = test.arrive("billing")
        test.advance("10s")
        local general = test.arrive("general") -- general is defined first, but came later
        test.close(first)
        test.expect_offer(billing, "anna")
        test.expect_status(general, "queued")
    end)

    it("lets priority grow with waiting time where the queue ages it", function()
        local first = anna_busy()
        local patient = test.arrive("general")
        test.advance("5m") -- five minutes in general: priority 5
        local urgent = test.arrive("general", { priority = 3 })
        test.close(first)
        test.expect_offer(patient, "anna")
        test.expect_status(urgent, "queued")
    end)

    it("takes a priority changed while waiting", function()
        local first = anna_busy()
        local one = test.arrive("billing")
        local two = test.arrive("billing")
        test.update(two, { priority = 5 })
        test.close(first)
        test.expect_offer(two, "anna")
        test.expect_status(one, "queued")
    end)

    it("lets an aging function decide how fast a conversation climbs", function()
        local first = anna_busy()
        local general = test.arrive("general")
        test.advance("1m")
        local twice = test.arrive("callbacks", { attributes = { asked_twice = true } })
        test.advance("2m") -- general: 3 minutes, priority 3; twice: 2 minutes at 3 a minute, 6
        test.close(first)
        test.expect_offer(twice, "anna")
        test.expect_status(general, "queued")
        test.eq(test.conversation(twice).effective_priority, 6, "effective priority")
    end)
end)
