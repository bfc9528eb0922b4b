//! Assembling standby duty: templates compiled, schedules resolved (calendars read), and
//! standby rules checked against the queues, agents and templates they name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::draft::{Draft, LayerDraft};
use super::{DeliveryChannel, Location, Recipients, RuleSet, User, STANDBY_EVENTS};
use crate::template::{Kind, Templates};

impl Draft {
    /// Templates, schedules and standby rules: compiled, resolved, and checked against each other
    /// and the queues that name them (same unit, every reference defined).
    pub(super) fn assemble_standby(&mut self, rules: &mut RuleSet, files: &[(String, String)]) {
        let (templates, problems) = Templates::compile(std::mem::take(&mut self.templates));
        for (at, message) in problems {
            self.problem(&at, message);
        }
        let unit_of_agent: BTreeMap<String, String> =
            rules.agents.iter().map(|a| (a.id.clone(), a.unit.clone())).collect();
        let agent_named = |name: &str| -> Option<String> {
            let name = name.trim();
            rules
                .agents
                .iter()
                .find(|a| {
                    a.id == name
                        || a.name.eq_ignore_ascii_case(name)
                        || a.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(name))
                })
                .map(|a| a.id.clone())
        };
        for mut draft in std::mem::take(&mut self.schedules) {
            let id = draft.def.id.clone();
            for layer in std::mem::take(&mut draft.layers) {
                let file = match layer {
                    LayerDraft::Rotation(r) => {
                        draft.def.layers.push(crate::schedule::Layer::Rotation(r));
                        continue;
                    }
                    LayerDraft::Calendar(file) => file,
                };
                let Some((_, text)) = files.iter().find(|(name, _)| *name == file) else {
                    self.problem(
                        &draft.def.at,
                        format!("schedule `{id}`: no calendar file `{file}` in the scripts folder"),
                    );
                    continue;
                };
                match crate::calendar::Calendar::parse(text, draft.def.zone, agent_named) {
                    Ok(c) => draft.def.layers.push(crate::schedule::Layer::Calendar(c)),
                    Err(problems) => {
                        for (line, message) in problems {
                            self.diagnostics.push(crate::error::Diagnostic::new(file.clone(), line, message));
                        }
                    }
                }
            }
            for agent in draft.def.agents() {
                match unit_of_agent.get(agent) {
                    None => {
                        if let Some(hint) = self.unknown("agents", agent, rules.agents.iter().map(|a| &a.id)) {
                            self.problem(&draft.def.at, format!("schedule `{id}`: unknown agent `{agent}`{hint}"));
                        }
                    }
                    Some(unit) if *unit != draft.def.unit => self.problem(
                        &draft.def.at,
                        format!("schedule `{id}` (unit `{}`) names agent `{agent}` of unit `{unit}`", draft.def.unit),
                    ),
                    Some(_) => {}
                }
            }
            if rules.schedules.insert(id.clone(), draft.def).is_some() {
                let at = rules.schedules[&id].at.clone();
                self.problem(&at, format!("schedule `{id}` is already defined"));
            }
        }

        // References to things that are not defined, reported at the end with every place that
        // uses them (the seed's "used by" list), found the way "where used" finds them.
        let mut missing: std::collections::BTreeSet<(&'static str, String)> = Default::default();
        for rule in std::mem::take(&mut self.standby) {
            let r = rule.id.clone();
            let check_unit = |this: &mut Draft, what: &str, id: &str, unit: &str| {
                if unit != rule.unit {
                    this.problem(
                        &rule.at,
                        format!("standby rule `{r}` (unit `{}`) uses {what} `{id}` of unit `{unit}`", rule.unit),
                    );
                }
            };
            for (kind, template) in
                [(Kind::Notification, Some(&rule.template)), (Kind::Clearing, rule.clearing.as_ref())]
            {
                let Some(template) = template else { continue };
                let user = Use { who: format!("standby rule `{r}`"), unit: &rule.unit, at: &rule.at };
                if !self.check_template(&templates, template, kind, &rule.channels, &user) {
                    missing.insert(("template", template.clone()));
                }
            }
            let who = format!("standby rule `{r}`");
            match &rule.notify {
                Recipients::Agents(list) => {
                    for a in list {
                        match unit_of_agent.get(a) {
                            None => {
                                if let Some(hint) = self.unknown("agents", a, rules.agents.iter().map(|a| &a.id)) {
                                    self.problem(&rule.at, format!("standby rule `{r}`: unknown agent `{a}`{hint}"));
                                }
                            }
                            Some(unit) => check_unit(self, "agent", a, unit),
                        }
                    }
                    let list = list.iter().map(String::as_str);
                    self.check_addresses(&rule.at, &who, list, &rule.channels, &rules.agents);
                }
                Recipients::Schedule(s) => match rules.schedules.get(s) {
                    None => {
                        missing.insert(("schedule", s.clone()));
                    }
                    Some(def) => {
                        check_unit(self, "schedule", s, &def.unit);
                        let who = format!("{who} (through schedule `{s}`)");
                        self.check_addresses(&rule.at, &who, def.agents(), &rule.channels, &rules.agents);
                    }
                },
                Recipients::FailedRecipient if rule.on.iter().any(|e| e != "delivery_failed") => self.problem(
                    &rule.at,
                    format!("standby rule `{r}`: notify = \"recipient\" only makes sense for `delivery_failed` events"),
                ),
                Recipients::FailedRecipient | Recipients::Function => {}
            }
            match rules.standby.entry(r) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    let message = format!("standby rule `{}` is already defined", e.key());
                    self.problem(&rule.at, message);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(rule);
                }
            }
        }
        self.assemble_workflows(rules, &templates, &mut missing);
        // A template no rule uses yet is still checked, against every parameter a message can have.
        for id in templates.ids() {
            if !rules.standby.values().any(|r| &r.template == id || r.clearing.as_ref() == Some(id)) {
                for problem in templates.unknown_parameters(id, Kind::Clearing) {
                    let at = templates.get(id).map(|d| d.at.clone()).unwrap_or_default();
                    self.problem(&at, format!("template `{id}`: {problem}"));
                }
            }
        }
        for q in &rules.queues {
            for (event, w) in &q.workflows {
                let known = STANDBY_EVENTS.iter().any(|(e, _)| e == event)
                    || event.strip_prefix("custom:").is_some_and(|n| !n.is_empty());
                if !known {
                    self.problem(&q.at, format!("queue `{}`: workflows: unknown event `{event}`", q.id));
                }
                match rules.workflows.get(w) {
                    None => {
                        missing.insert(("workflow", w.clone()));
                    }
                    Some(def) if def.unit != q.unit => self.problem(
                        &q.at,
                        format!("queue `{}` (unit `{}`) starts workflow `{w}` of unit `{}`", q.id, q.unit, def.unit),
                    ),
                    Some(_) => {}
                }
            }
            for s in &q.standby {
                match rules.standby.get(s) {
                    None => {
                        missing.insert(("standby rule", s.clone()));
                    }
                    Some(rule) if rule.unit != q.unit => self.problem(
                        &q.at,
                        format!("queue `{}` (unit `{}`) uses standby rule `{s}` of unit `{}`", q.id, q.unit, rule.unit),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (what, id) in missing {
            let (ns, known): (&str, Vec<&String>) = match what {
                "template" => ("templates", templates.ids().collect()),
                "schedule" => ("schedules", rules.schedules.keys().collect()),
                "workflow" => ("workflows", rules.workflows.keys().collect()),
                _ => ("standby", rules.standby.keys().collect()),
            };
            let Some(hint) = self.unknown(ns, &id, known.into_iter()) else { continue };
            let users: Vec<User> = rules.users_of(&id).into_iter().filter(|u| u.uses == what).collect();
            // Where else it is used, when that is somewhere else too.
            let others = match users.len() {
                0 | 1 => String::new(),
                _ => {
                    let places: Vec<String> = users
                        .iter()
                        .map(|u| format!("{} `{}` at {}:{}", u.kind, u.id, u.file, u.line.unwrap_or(0)))
                        .collect();
                    format!(" (used by: {})", places.join(", "))
                }
            };
            for u in &users {
                self.problem(
                    &Location { file: u.file.clone(), line: u.line },
                    format!("{} `{}` uses {what} `{id}`, which is not defined{hint}{others}", u.kind, u.id),
                );
            }
        }
        rules.templates = Arc::new(templates);
    }

    /// Whether template `id` is defined; if so, also that it is of the user's unit, knows the
    /// parameters of a `kind` message and has a body for each channel the user sends it by.
    pub(super) fn check_template(
        &mut self,
        templates: &Templates,
        id: &str,
        kind: Kind,
        channels: &[DeliveryChannel],
        user: &Use,
    ) -> bool {
        let Some(def) = templates.get(id) else { return false };
        if def.unit != user.unit {
            let message = format!("{} (unit `{}`) uses template `{id}` of unit `{}`", user.who, user.unit, def.unit);
            self.problem(user.at, message);
        }
        for problem in templates.unknown_parameters(id, kind) {
            let used = format!("used as {} message by {}", kind.as_str(), user.who);
            self.problem(&def.at, format!("template `{id}` ({used}): {problem}"));
        }
        for channel in channels {
            let lacks = match channel {
                DeliveryChannel::Email => def.email.is_none().then_some("email body (`email`)"),
                DeliveryChannel::Sms => def.sms.is_none().then_some("SMS body (`sms`)"),
                DeliveryChannel::Webhook => None,
            };
            if let Some(part) = lacks {
                let message =
                    format!("{} sends {} with template `{id}`, which has no {part}", user.who, channel.as_str());
                self.problem(user.at, message);
            }
        }
        true
    }
}

/// Who uses a template, for the diagnostics about it.
pub(super) struct Use<'a> {
    pub(super) who: String,
    pub(super) unit: &'a str,
    pub(super) at: &'a Location,
}
