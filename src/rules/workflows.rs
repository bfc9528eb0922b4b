//! Assembling workflows: the agents, templates and standby rules their actions name.

use std::collections::BTreeMap;

use super::draft::Draft;
use super::standby::Use;
use super::{Recipients, RuleSet};
use crate::template::{Kind, Templates};
use crate::workflow::Action;

impl Draft {
    /// Workflows: each one's shape (legs, links, reachability), and what its actions name.
    pub(super) fn assemble_workflows(
        &mut self,
        rules: &mut RuleSet,
        templates: &Templates,
        missing: &mut std::collections::BTreeSet<(&'static str, String)>,
    ) {
        let unit_of_agent: BTreeMap<String, String> =
            rules.agents.iter().map(|a| (a.id.clone(), a.unit.clone())).collect();
        for w in std::mem::take(&mut self.workflows) {
            for (at, message) in w.check() {
                self.problem(&at, message);
            }
            let who = format!("workflow `{}`", w.id);
            for a in w.stages.iter().flat_map(|s| &s.actions) {
                let other_unit = |what: &str, id: &str, unit: &str| {
                    format!("{who} (unit `{}`) uses {what} `{id}` of unit `{unit}`", w.unit)
                };
                match &a.action {
                    Action::Notify { template, channel, to } => {
                        let user = Use { who: who.clone(), unit: &w.unit, at: &a.at };
                        if !self.check_template(templates, template, Kind::Notification, &[*channel], &user) {
                            missing.insert(("template", template.clone()));
                        }
                        match to {
                            Recipients::Schedule(s) => match rules.schedules.get(s) {
                                None => {
                                    missing.insert(("schedule", s.clone()));
                                }
                                Some(def) if def.unit != w.unit => {
                                    self.problem(&a.at, other_unit("schedule", s, &def.unit))
                                }
                                Some(def) => {
                                    self.check_addresses(&a.at, &who, def.agents(), &[*channel], &rules.agents)
                                }
                            },
                            Recipients::Agents(list) => {
                                for id in list {
                                    match unit_of_agent.get(id) {
                                        None => {
                                            if let Some(hint) =
                                                self.unknown("agents", id, rules.agents.iter().map(|a| &a.id))
                                            {
                                                self.problem(&a.at, format!("{who}: unknown agent `{id}`{hint}"));
                                            }
                                        }
                                        Some(unit) if *unit != w.unit => {
                                            self.problem(&a.at, other_unit("agent", id, unit))
                                        }
                                        Some(_) => {}
                                    }
                                }
                                let list = list.iter().map(String::as_str);
                                self.check_addresses(&a.at, &who, list, &[*channel], &rules.agents);
                            }
                            Recipients::Function | Recipients::FailedRecipient => {}
                        }
                    }
                    Action::Standby { rule } => match rules.standby.get(rule) {
                        None => {
                            missing.insert(("standby rule", rule.clone()));
                        }
                        Some(r) if r.unit != w.unit => self.problem(&a.at, other_unit("standby rule", rule, &r.unit)),
                        Some(_) => {}
                    },
                    _ => {}
                }
            }
            match rules.workflows.entry(w.id.clone()) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    let first = format!("{}:{}", e.get().at.file, e.get().at.line.unwrap_or(0));
                    self.problem(&w.at, format!("workflow `{}` is already defined (at {first})", w.id));
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(w);
                }
            }
        }
    }
}
