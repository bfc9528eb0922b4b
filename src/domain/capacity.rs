//! How much work of each channel an agent holds at once: one exclusive conversation (a
//! voice call, the default for every channel) or up to N shared ones (three chats).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Timestamp;
use crate::timer::TimerKey;

/// The most conversations of one channel an agent may hold; a typo of a few zeros would
/// otherwise make one agent swallow a whole queue.
pub const MAX_SHARED: u32 = 100;

/// What an agent may hold of one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    /// One conversation, and nothing else beside it: no other channel is offered while it
    /// rings or lasts, and it is offered only to an agent who holds nothing. The agent's
    /// state (offered, busy, wrap-up) is this work's.
    Exclusive,
    /// Up to this many at once, beside each other and beside other shared channels. The
    /// agent's state stays Waiting while they ring and last; 0 means none of this channel.
    Shared(u32),
}

/// An agent's limits by channel; a channel it does not name is [`Limit::Exclusive`], so a
/// center that declares nothing works one conversation at a time, as before capacity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity(BTreeMap<String, Limit>);

impl Capacity {
    /// Reads `{ voice = "exclusive", chat = 3, email = 5 }`: a whole number of shared
    /// conversations (0 to [`MAX_SHARED`]) or `"exclusive"` per channel; every problem is named.
    pub fn parse(map: &BTreeMap<String, Value>) -> Result<Capacity, Vec<String>> {
        let mut limits = BTreeMap::new();
        let mut problems = Vec::new();
        for (channel, value) in map {
            let limit = match value {
                Value::String(s) if s == "exclusive" => Some(Limit::Exclusive),
                Value::Number(n) => n
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && (0.0..=MAX_SHARED as f64).contains(n))
                    .map(|n| Limit::Shared(n as u32)),
                _ => None,
            };
            match limit {
                Some(limit) => {
                    limits.insert(channel.clone(), limit);
                }
                None => problems.push(format!(
                    "capacity of channel `{channel}` must be a whole number from 0 to {MAX_SHARED} or \"exclusive\", \
                     got {value}"
                )),
            }
        }
        match problems.is_empty() {
            true => Ok(Capacity(limits)),
            false => Err(problems),
        }
    }

    /// The limit for `channel`.
    #[inline]
    pub fn limit(&self, channel: &str) -> Limit {
        // Most centers declare nothing: no lookup at all then.
        if self.0.is_empty() {
            return Limit::Exclusive;
        }
        self.0.get(channel).copied().unwrap_or(Limit::Exclusive)
    }

    /// `over` laid on `self`: an agent's own entries win over the team's, channel by channel.
    pub fn overlaid(&self, over: &Capacity) -> Capacity {
        let mut limits = self.0.clone();
        limits.extend(over.0.iter().map(|(c, l)| (c.clone(), *l)));
        Capacity(limits)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Limit)> {
        self.0.iter().map(|(c, l)| (c.as_str(), *l))
    }

    /// As the API and the Lua view show it: `{ "chat": 3, "voice": "exclusive" }`.
    pub fn to_json(&self) -> Value {
        let entries = self.0.iter().map(|(c, l)| {
            let v = match l {
                Limit::Exclusive => Value::from("exclusive"),
                Limit::Shared(n) => Value::from(*n),
            };
            (c.clone(), v)
        });
        Value::Object(entries.collect())
    }
}

/// A conversation an agent holds on a shared channel: ringing (with its offer), then
/// talked, then in wrap-up (with the timer that frees the slot).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slot {
    pub conversation: Arc<str>,
    pub channel: Arc<str>,
    /// The offer ringing the agent, until accepted.
    pub offer: Option<u64>,
    /// When the agent accepted it (talk time counts from here).
    pub since: Timestamp,
    pub wrap_up: Option<TimerKey>,
}

impl Slot {
    /// `ringing`, `talking` or `wrap_up`.
    pub fn phase(&self) -> &'static str {
        match (self.offer, self.wrap_up) {
            (Some(_), _) => "ringing",
            (None, None) => "talking",
            (None, Some(_)) => "wrap_up",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Capacity, Vec<String>> {
        Capacity::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn channels_not_named_are_exclusive_and_agents_override_teams() {
        let team = parse(json!({ "chat": 3, "email": 5 })).unwrap();
        let own = parse(json!({ "chat": 2, "voice": "exclusive" })).unwrap();
        let c = team.overlaid(&own);
        assert_eq!(c.limit("chat"), Limit::Shared(2));
        assert_eq!(c.limit("email"), Limit::Shared(5));
        assert_eq!(c.limit("voice"), Limit::Exclusive);
        assert_eq!(c.limit("sms"), Limit::Exclusive);
        assert_eq!(Capacity::default().limit("chat"), Limit::Exclusive);
    }

    #[test]
    fn bad_limits_are_named() {
        for bad in [json!(-1), json!(2.5), json!(101), json!("many"), json!(true), json!(1e300)] {
            let problems = parse(json!({ "chat": bad })).unwrap_err();
            assert!(problems[0].contains("capacity of channel `chat`"), "{problems:?}");
        }
        assert_eq!(parse(json!({ "chat": 0 })).unwrap().limit("chat"), Limit::Shared(0));
    }
}
