-- rota.skills: the skills filter. A conversation may require skills with a
-- minimum level (conversation.requires = { en = 3 }); an agent qualifies when
-- every required skill is at least that level in agent.skills.
local skills = {}

-- The first skill the agent lacks for this conversation, or nil when it qualifies.
function skills.missing(conversation, agent)
    local requires = conversation.requires
    if next(requires) == nil then
        return nil
    end
    for skill, level in requires do
        local has = agent.skills[skill]
        if has == nil or has < level then
            return skill
        end
    end
    return nil
end

return skills
