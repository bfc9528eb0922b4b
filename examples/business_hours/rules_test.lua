local test = require("rota.test")

describe("business hours", function()
    before_each(function()
        test.ready("anna")
        test.ready("night")
        test.ready("weekend")
    end)

    it("answers within the hours, on the Oslo wall clock", function()
        test.at("2026-03-27 15:59", "Europe/Oslo") -- Friday, winter time
        test.expect_offer(test.arrive("support"), "anna")
    end)

    it("sends callers to voicemail after closing", function()
        test.at("2026-03-27 16:00", "Europe/Oslo")
        local call = test.arrive("support")
        test.expect_offer(call, "night")
        test.eq(test.conversation(call).queue, "voicemail")
    end)

    it("opens at 08:00 local time after the change to summer time", function()
        test.at("2026-03-30 07:59", "Europe/Oslo") -- Monday, summer time (05:59 UTC)
        test.expect_offer(test.arrive("support"), "night")
        test.at("2026-03-30 08:00", "Europe/Oslo")
        test.expect_offer(test.arrive("support"), "anna")
    end)

    it("is closed on a holiday, and the weekend agent has the weekend", function()
        test.at("2026-04-02 10:00", "Europe/Oslo") -- Maundy Thursday
        local thursday = test.arrive("support")
        test.expect_offer(thursday, "night")
        test.accept(thursday, "night")
        test.at("2026-04-04 10:00", "Europe/Oslo") -- Saturday
        test.expect_offer(test.arrive("support"), "weekend")
    end)

    it("is closed on the calendar's holidays, every year", function()
        test.at("2026-12-25 10:00", "Europe/Oslo") -- a Friday, Christmas Day
        local christmas = test.arrive("support")
        test.expect_offer(christmas, "night")
        test.accept(christmas, "night")
        test.at("2026-12-28 10:00", "Europe/Oslo") -- the Monday after: open
        test.expect_offer(test.arrive("support"), "anna")
    end)

    it("repeats the calendar's yearly holidays", function()
        test.at("2027-05-17 10:00", "Europe/Oslo") -- Constitution Day 2027, a Monday
        test.expect_offer(test.arrive("support"), "night")
    end)

    it("moves a caller still waiting at closing time", function()
        test.at("2026-03-27 15:50", "Europe/Oslo")
        test.sign_out("anna")
        local call = test.arrive("support")
        test.expect_status(call, "queued")
        test.at("2026-03-27 16:00", "Europe/Oslo")
        test.expect_offer(call, "night")
    end)
end)
