//! The agent directory: agents' records as the API creates and updates them.
//!
//! Scripts define agents with `agents.define`; an operator's HR or PBX system usually owns
//! contact details and who exists at all. A record here adds an agent the scripts do not know,
//! or overrides the fields it sets of one they do. Records are engine state (they come back
//! from the journal like everything else) and survive reloads.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::capacity::Capacity;
use crate::error::InputError;
use crate::rules::{AgentDef, Location, RuleSet};

/// An agent's fields as given to the API. Absent fields are left as they are; `null` clears
/// the optional ones (team, email, phone, time zone).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRecord {
    /// Set when the agent is created; it cannot change afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub team: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<String>>,
    /// An IANA time zone such as `Europe/Oslo`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<BTreeMap<String, f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, Value>>,
    /// Conversations per channel at once (`{"chat": 3, "voice": "exclusive"}`), replacing
    /// the scripts' own entries for the agent; the team's capacity stays under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<BTreeMap<String, Value>>,
    /// Queues the agent takes work from, besides those whose scripts list the agent; they go
    /// after the scripted members, in the order agents were created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl AgentRecord {
    /// Lays `newer` over this record: the fields `newer` gives win.
    pub fn merge(&mut self, newer: AgentRecord) {
        macro_rules! take {
            ($($f:ident),*) => { $( if newer.$f.is_some() { self.$f = newer.$f; } )* };
        }
        take!(unit, name, team, email, phone, time_zone, skills, weight, attributes, capacity, queues);
    }

    /// `base` (the scripts' definition, or a bare one) with this record's fields laid over it.
    pub fn apply(&self, mut base: AgentDef) -> AgentDef {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { base.$f = v.clone(); } )* };
        }
        set!(unit, name, team, email, phone, time_zone, skills, weight, attributes);
        // Checked by `validate` before any record is kept.
        if let Some(capacity) = self.capacity.as_ref().and_then(|c| Capacity::parse(c).ok()) {
            base.capacity = capacity;
        }
        base
    }

    /// Checks the record of an agent of `unit` against the rules, naming the first field that is wrong.
    pub fn validate(&self, rules: &RuleSet, unit: &str) -> Result<(), InputError> {
        let invalid = |field: &'static str, message: String| Err(InputError::Invalid { field, message });
        if let Some(Some(team)) = &self.team {
            if !rules.teams.contains_key(team) {
                let known: Vec<&str> = rules.teams.keys().map(String::as_str).collect();
                return invalid("team", format!("team `{team}` is not defined (defined: {})", list(&known)));
            }
        }
        if let Some(Some(email)) = &self.email {
            let ok = email.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty() && host.contains('.') && !email.contains(char::is_whitespace)
            });
            if !ok {
                return invalid("email", format!("`{email}` is not an email address (like name@example.com)"));
            }
        }
        if let Some(Some(phone)) = &self.phone {
            let digits = phone.chars().filter(char::is_ascii_digit).count();
            let ok = phone.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) && digits >= 3;
            if !ok {
                return invalid(
                    "phone",
                    format!("`{phone}` is not a phone number (digits, optionally +, spaces, dashes)"),
                );
            }
        }
        if let Some(Some(zone)) = &self.time_zone {
            if zone.parse::<chrono_tz::Tz>().is_err() {
                return invalid("time_zone", format!("`{zone}` is not an IANA time zone (like Europe/Oslo)"));
            }
        }
        if let Some(weight) = self.weight {
            if !(weight.is_finite() && weight >= 0.0) {
                return invalid("weight", format!("weight must be a number of at least 0, got {weight}"));
            }
        }
        for (skill, level) in self.skills.iter().flatten() {
            if !level.is_finite() {
                return invalid("skills", format!("skill `{skill}` needs a finite level"));
            }
        }
        if let Some(Err(problems)) = self.capacity.as_ref().map(Capacity::parse) {
            return invalid("capacity", problems.join("; "));
        }
        if let Some(unit) = &self.unit {
            if unit.is_empty() || unit.chars().any(char::is_control) {
                return invalid("unit", "the unit must be non-empty, without control characters".into());
            }
        }
        for queue in self.queues.iter().flatten() {
            // Another unit's queue is answered like one that does not exist.
            if rules.queue_index(queue).is_none_or(|q| rules.queues[q].unit != unit) {
                return invalid("queues", format!("unit `{unit}` has no queue `{queue}`"));
            }
        }
        Ok(())
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The definition of an agent only the directory knows.
pub fn bare(key: &str) -> AgentDef {
    let (unit, id) = crate::unit::split(key);
    AgentDef {
        id: id.into(),
        unit: unit.into(),
        name: id.into(),
        weight: 1.0,
        at: Location { file: "<api>".into(), line: None },
        ..AgentDef::default()
    }
}
