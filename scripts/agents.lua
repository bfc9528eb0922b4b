-- The people who answer. Presence, state and work day come at run time from
-- the API (or a scenario); contact details and skills are defined here.
agents.define { id = "olga", name = "Olga Petrova", team = "line", email = "olga@example.com", phone = "+79990000001" }
agents.define { id = "ivan", name = "Ivan Sokolov", team = "line", email = "ivan@example.com", phone = "+79990000002" }

agents.define { id = "anna", name = "Anna Berg", team = "support", email = "anna@example.com", phone = "+4790000011", time_zone = "Europe/Oslo", skills = { en = 5, no = 5 } }
agents.define { id = "bjorn", name = "Bjørn Dahl", team = "support", email = "bjorn@example.com", phone = "+4790000012", time_zone = "Europe/Oslo", skills = { no = 4 } }
agents.define { id = "carla", name = "Carla Diaz", team = "support", email = "carla@example.com", phone = "+4790000013", time_zone = "Europe/Madrid", skills = { en = 4, es = 5 } }

agents.define { id = "dmitri", name = "Dmitri Orlov", team = "sales", email = "dmitri@example.com", weight = 2 }
agents.define { id = "eva", name = "Eva Novak", team = "sales", email = "eva@example.com" }
