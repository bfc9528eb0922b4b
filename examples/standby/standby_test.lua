-- The LUCS story as tests: `rota test examples/standby`.
local test = require("rota.test")

local kari = { name = "Kari Nordmann", number = "+4791234567" }

describe("a call Pia misses", function()
    before_each(function()
        -- Monday 23 November 2026, 14:00 in Oslo: Sofie's week on standby duty.
        test.at("2026-11-23 14:00", "Europe/Oslo")
        test.ready("pia")
    end)

    it("alerts Sofie, on duty, by email and SMS", function()
        test.arrive("service_desk", { caller = kari, service = { name = "Service desk" } })
        test.advance("20s")
        local email = test.expect_notification({ to = "sofie", channel = "email", kind = "notification" })
        test.eq(email.subject, "Missed call from Kari Nordmann on Service desk")
        test.expect_notification({ to = "sofie", channel = "sms", body = "(+4791234567) on Service desk at 14:00" })
        test.expect_no_notification({ to = "dan" })
    end)

    it("clears Sofie's alert when Pia answers on the second ring, and tells Pia nothing", function()
        local call = test.arrive("service_desk", { caller = kari, service = { name = "Service desk" } })
        test.advance("20s")
        test.advance("10s") -- Pia's no-answer delay; it rings her again
        test.expect_offer(call, "pia")
        test.accept(call, "pia")
        local cleared = test.expect_notification({ to = "sofie", kind = "clearing", channel = "email" })
        test.eq(cleared.subject, "Taken over: call from Kari Nordmann")
        test.expect_no_notification({ to = "pia" })
    end)

    it("alerts Dan the next week, after the Monday 09:00 handover", function()
        test.advance("7d")
        test.arrive("service_desk", { caller = kari })
        test.advance("20s")
        test.expect_notification({ to = "dan", channel = "email" })
        test.expect_no_notification({ to = "sofie" })
    end)
end)
