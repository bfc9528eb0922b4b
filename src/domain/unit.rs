//! Organization units: the walls between tenants, and the keys of ids that live per unit.
//!
//! Conversation and agent ids live per unit: two units may each have a conversation `c1` and
//! an agent `alice`. The engine keys such a thing by its unit and id together; in the default
//! unit the key is the id itself (so a single-unit center never sees a key), elsewhere the
//! unit and the id joined by [`UNIT_SEPARATOR`], a control character no id may hold. Only the
//! id is ever shown: every serialization of a key goes through [`external`].

use std::sync::Arc;

pub use crate::rules::DEFAULT_UNIT;

/// Joins a unit and an id into a key; no id or unit may contain it.
pub const UNIT_SEPARATOR: char = '\u{1f}';

/// The engine's key of `id` of `unit`.
pub fn key(unit: &str, id: &str) -> Arc<str> {
    match unit == DEFAULT_UNIT {
        true => Arc::from(id),
        false => Arc::from(format!("{unit}{UNIT_SEPARATOR}{id}")),
    }
}

/// The id a key shows: the key without its unit.
pub fn external(key: &str) -> &str {
    key.split_once(UNIT_SEPARATOR).map_or(key, |(_, id)| id)
}

/// The unit and the id of a key.
pub fn split(key: &str) -> (&str, &str) {
    key.split_once(UNIT_SEPARATOR).unwrap_or((DEFAULT_UNIT, key))
}

/// Whether `given` is a key of a unit other than the default one (not a bare id).
pub fn is_key(given: &str) -> bool {
    given.contains(UNIT_SEPARATOR)
}

/// Serializes a key as the id it shows (`#[serde(serialize_with)]`).
pub fn serialize_external<S: serde::Serializer>(key: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(external(key))
}

/// Serializes keys as the ids they show (`#[serde(serialize_with)]`).
pub fn serialize_external_all<S: serde::Serializer>(keys: &[Arc<str>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(keys.iter().map(|k| external(k)))
}

/// Serializes an optional key as the id it shows (`#[serde(serialize_with)]`).
pub fn serialize_external_opt<S: serde::Serializer>(key: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.serialize_some(external(k)),
        None => s.serialize_none(),
    }
}

/// What resolving a bare id among units found.
pub enum Resolved<'a> {
    Found(Arc<str>),
    Unknown,
    /// Several allowed units have the id: these.
    Ambiguous(Vec<&'a str>),
}

/// Resolves `given` (a key, or an id) to a key among the units `allowed` lets through.
/// `unit_of` answers the unit of a key that exists; `units` are the units besides the default
/// one (keys are made only for those, so a single-unit center pays one lookup).
pub fn resolve<'a>(
    given: &str,
    units: impl IntoIterator<Item = &'a str>,
    allowed: impl Fn(&str) -> bool,
    unit_of: impl Fn(&str) -> Option<&'a str>,
) -> Resolved<'a> {
    if is_key(given) {
        return match unit_of(given) {
            Some(u) if allowed(u) => Resolved::Found(Arc::from(given)),
            _ => Resolved::Unknown,
        };
    }
    let mut found: Vec<(&'a str, Arc<str>)> = Vec::new();
    if let Some(u) = unit_of(given).filter(|u| *u == DEFAULT_UNIT && allowed(u)) {
        found.push((u, Arc::from(given)));
    }
    for unit in units.into_iter().filter(|u| allowed(u)) {
        let key = key(unit, given);
        if unit_of(&key).is_some() {
            found.push((unit, key));
        }
    }
    match (found.pop(), found.is_empty()) {
        (None, _) => Resolved::Unknown,
        (Some((_, key)), true) => Resolved::Found(key),
        (Some((unit, _)), false) => {
            Resolved::Ambiguous(found.into_iter().map(|(u, _)| u).chain(std::iter::once(unit)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_shows_its_id_and_the_default_unit_keys_by_id() {
        assert_eq!(&*key(DEFAULT_UNIT, "c1"), "c1");
        let k = key("north", "c1");
        assert_ne!(&*k, "c1");
        assert_eq!(external(&k), "c1");
        assert_eq!((split(&k), split("c1")), (("north", "c1"), (DEFAULT_UNIT, "c1")));
        assert!(is_key(&k) && !is_key("c1"));
    }
}
