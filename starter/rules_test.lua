-- Tests for rules.lua, on virtual time: `rota test`.
local test = require("rota.test")

describe("the hotline", function()
    before_each(function()
        test.ready("lena")
        test.ready("omar")
    end)

    it("rings Lena first", function()
        test.expect_offer(test.arrive("hotline"), "lena")
    end)

    it("passes to Omar after 30 seconds and tells him", function()
        local call = test.arrive("hotline", { caller = { number = "+4791234567" } })
        test.advance("30s")
        test.expect_offer(call, "omar")
        test.expect_notification({ to = "omar", channel = "email" })
    end)
end)
