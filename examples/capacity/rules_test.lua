local test = require("rota.test")

local function chat(id)
    return test.arrive("chats", { id = id, channel = "chat" })
end

describe("capacity per channel", function()
    it("holds three chats at once and keeps the fourth waiting until one ends", function()
        test.ready("anna")
        for _, id in { "ch1", "ch2", "ch3" } do
            test.expect_offer(chat(id), "anna")
            test.accept(id, "anna")
        end
        test.expect_agent("anna", { state = "waiting", load = { chat = 3 } })
        local fourth = chat("ch4")
        test.expect_status(fourth, "queued")
        test.expect_skipped(fourth, "anna", "channel_full")
        test.close("ch1")
        -- The wrap-up keeps the slot for the team's 10 seconds.
        test.advance("9s")
        test.expect_status(fourth, "queued")
        test.advance("1s")
        test.expect_offer(fourth, "anna")
    end)

    it("lets a call block chats and chats block a call", function()
        test.ready("anna")
        local call = test.arrive("calls")
        test.expect_offer(call, "anna")
        test.accept(call, "anna")
        local first = chat("ch1")
        test.expect_skipped(first, "anna", "state_busy")
        test.close(call)
        test.advance("10s")
        test.expect_offer(first, "anna")
        test.accept(first, "anna")
        local second = test.arrive("calls")
        test.expect_status(second, "queued")
        test.expect_skipped(second, "anna", "channel_busy")
    end)

    it("gives a chat to the agent with the most room", function()
        test.ready("anna")
        test.ready("bo")
        test.expect_offer(chat("ch1"), "anna") -- three free against one: Anna
        test.accept("ch1", "anna")
        test.expect_offer(chat("ch2"), "anna") -- two against one
        test.accept("ch2", "anna")
        test.expect_offer(chat("ch3"), "anna") -- one against one: listed first
        test.accept("ch3", "anna")
        test.expect_offer(chat("ch4"), "bo")
        test.accept("ch4", "bo")
        test.expect_skipped(chat("ch5"), "bo", "channel_full")
    end)

    it("counts a chat that rang out as the person's miss and frees its slot", function()
        test.ready("anna")
        test.expect_offer(chat("ch1"), "anna")
        test.advance("30s")
        -- Offered again, the only one who can: one slot, not two.
        test.expect_offer("ch1", "anna")
        test.expect_agent("anna", {
            load = { chat = 1 },
            counters = { offered = 2, answered = 0, declined = 0, missed = 1, missed_in_row = 1, talk_time_ms = 0 },
        })
    end)

    it("pauses an agent between chats without taking the ones she holds", function()
        test.ready("anna")
        test.expect_offer(chat("ch1"), "anna")
        test.accept("ch1", "anna")
        test.expect_offer(chat("ch2"), "anna")
        test.pause("anna", "lunch")
        test.expect_status("ch2", "queued")
        test.expect_status("ch1", "assigned")
        test.expect_agent("anna", { state = "paused", load = { chat = 1 } })
    end)
end)
