-- Tests for standby.lua: who is alerted about support calls, and what they are told.
local test = require("rota.test")

describe("standby duty for customer support", function()
    before_each(function()
        -- Monday 5 January 2026, 10:00 in Oslo: Bjørn has been on duty since 08:00.
        test.at("2026-01-05 10:00", "Europe/Oslo")
        test.ready("anna")
    end)

    it("alerts the agent on duty by email and SMS when a call rings out", function()
        local call = test.arrive("support", { caller = { name = "Kari Nordmann", number = "+4791234567" } })
        test.advance("20s")
        local email = test.expect_notification({ to = "bjorn", channel = "email", kind = "notification" })
        test.eq(email.subject, "[Customer support] missed: call from Kari Nordmann")
        test.expect_notification({ to = "bjorn", channel = "sms", body = "needs attention (missed) at 10:00" })
        test.expect_no_notification({ to = "carla" })
        test.eq(email.conversation, call)
    end)

    it("tells the agent on duty when someone answers after all, and nobody else", function()
        local call = test.arrive("support", { caller = { name = "Kari Nordmann" } })
        test.advance("20s")
        test.advance("15s") -- Anna's no-answer delay; the call rings her again
        test.accept(call, "anna")
        local cleared = test.expect_notification({ to = "bjorn", channel = "email", kind = "clearing" })
        test.eq(cleared.subject, "[Customer support] Taken: call from Kari Nordmann")
        test.expect_notification({ to = "bjorn", channel = "sms", kind = "clearing", body = "Anna Berg took the" })
        test.expect_no_notification({ to = "anna" })
    end)

    it("alerts Carla instead after the 08:00 handover", function()
        test.advance("22h") -- Tuesday 08:00 in Oslo
        test.arrive("support", { caller = { number = "+4791234567" } })
        test.advance("20s")
        test.expect_notification({ to = "carla", channel = "email" })
        test.expect_no_notification({ to = "bjorn" })
    end)

    it("alerts nobody about a call that is answered at once", function()
        local call = test.arrive("support")
        test.accept(call, "anna")
        test.expect_no_notification()
    end)
end)
