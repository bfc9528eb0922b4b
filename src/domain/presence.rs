//! Presence: what an agent shows. Base statuses, custom presences mapped onto them, the default.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The statuses routing understands. Custom presences always map to one of these.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BaseStatus {
    Available,
    Busy,
    BusyDnd,
    Away,
    Offline,
    /// Set only by the system (after a missed offer); an agent cannot pick it.
    Inactive,
}

impl BaseStatus {
    pub const ALL: [BaseStatus; 6] = [
        BaseStatus::Available,
        BaseStatus::Busy,
        BaseStatus::BusyDnd,
        BaseStatus::Away,
        BaseStatus::Offline,
        BaseStatus::Inactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BaseStatus::Available => "available",
            BaseStatus::Busy => "busy",
            BaseStatus::BusyDnd => "busy_dnd",
            BaseStatus::Away => "away",
            BaseStatus::Offline => "offline",
            BaseStatus::Inactive => "inactive",
        }
    }

    /// The text shown for the built-in presence of the same name.
    pub fn text(self) -> &'static str {
        match self {
            BaseStatus::Available => "Available",
            BaseStatus::Busy => "Busy",
            BaseStatus::BusyDnd => "Busy - Do not disturb",
            BaseStatus::Away => "Away",
            BaseStatus::Offline => "Offline",
            BaseStatus::Inactive => "Inactive",
        }
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for BaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BaseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BaseStatus::ALL.into_iter().find(|b| b.as_str() == s).ok_or_else(|| {
            format!("unknown base status `{s}` (one of: available, busy, busy_dnd, away, offline, inactive)")
        })
    }
}

/// A set of base statuses, e.g. the ones a queue allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BaseSet(u8);

impl BaseSet {
    pub fn of(statuses: impl IntoIterator<Item = BaseStatus>) -> Self {
        BaseSet(statuses.into_iter().fold(0, |bits, s| bits | s.bit()))
    }

    pub fn contains(self, s: BaseStatus) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = BaseStatus> {
        BaseStatus::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

/// One presence an agent can show: a built-in one (its id is the base status name)
/// or a custom one defined in Lua.
#[derive(Clone, Debug, PartialEq)]
pub struct Presence {
    pub id: String,
    pub text: String,
    pub base: BaseStatus,
}

/// Every presence of a rule set, plus which one an agent gets at sign-in.
#[derive(Clone, Debug)]
pub struct PresenceCatalog {
    presences: BTreeMap<String, Presence>,
    default: String,
}

impl Default for PresenceCatalog {
    fn default() -> Self {
        let presences = BaseStatus::ALL
            .into_iter()
            .map(|b| (b.as_str().to_string(), Presence { id: b.as_str().into(), text: b.text().into(), base: b }))
            .collect();
        PresenceCatalog { presences, default: "available".into() }
    }
}

impl PresenceCatalog {
    /// Adds a custom presence; the caller has checked the id is new and the base is not `inactive`.
    pub fn insert(&mut self, presence: Presence) {
        self.presences.insert(presence.id.clone(), presence);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.presences.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<&Presence> {
        self.presences.get(id)
    }

    pub fn set_default(&mut self, id: String) {
        self.default = id;
    }

    /// The presence given at sign-in: the one set in Lua, or Available.
    pub fn default_id(&self) -> &str {
        &self.default
    }

    pub fn all(&self) -> impl Iterator<Item = &Presence> {
        self.presences.values()
    }

    /// Whether an agent (not the system) may pick this presence.
    pub(crate) fn selectable(&self, id: &str) -> Result<&Presence, String> {
        match self.presences.get(id) {
            None => Err(format!("presence `{id}` is not defined")),
            Some(p) if p.id == "inactive" => Err("presence `inactive` is set by the system only".into()),
            Some(p) => Ok(p),
        }
    }
}
