//! The scripts' durable key-value memory: per organization unit, shared by every queue and
//! policy of the unit, bounded, with expiry. It is engine state: only script calls on the
//! engine thread change it, so replaying the journal rebuilds it, and it outlives reloads.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::time::Timestamp;

/// What the whole memory may hold, keys and values as JSON, in bytes.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// What one value may take, as JSON, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Entry {
    value: Value,
    expires: Option<Timestamp>,
    bytes: usize,
}

/// Every unit's keys and values. Serialized (for snapshots) as a list of
/// `(unit, key, entry)`: JSON maps take only string keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kv {
    entries: BTreeMap<(String, String), Entry>,
    bytes: usize,
}

impl serde::Serialize for Kv {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries.iter().map(|((unit, key), e)| (unit, key, e)))
    }
}

impl<'de> serde::Deserialize<'de> for Kv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<(String, String, Entry)>::deserialize(d)?;
        let bytes = list.iter().map(|(_, _, e)| e.bytes).sum();
        Ok(Kv { entries: list.into_iter().map(|(unit, key, e)| ((unit, key), e)).collect(), bytes })
    }
}

impl Kv {
    /// The value of `key` in `unit` at `now`, unless it has expired.
    pub fn get(&self, unit: &str, key: &str, now: Timestamp) -> Option<&Value> {
        let e = self.entries.get(&(unit.to_string(), key.to_string()))?;
        e.expires.is_none_or(|t| t > now).then_some(&e.value)
    }

    /// Sets `key` in `unit` (until `expires`, if given), or removes it when `value` is null.
    /// Refuses a value or a total over the bounds, changing nothing.
    pub fn set(
        &mut self,
        unit: &str,
        key: &str,
        value: Value,
        expires: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), String> {
        self.forget_expired(now);
        let k = (unit.to_string(), key.to_string());
        let old = self.entries.get(&k).map_or(0, |e| e.bytes);
        if value.is_null() {
            self.entries.remove(&k);
            self.bytes -= old;
            return Ok(());
        }
        let bytes = key.len() + unit.len() + serde_json::to_string(&value).map_err(|e| e.to_string())?.len();
        if bytes > MAX_VALUE_BYTES {
            return Err(format!("kv: `{key}` would take {bytes} bytes; a value may take at most {MAX_VALUE_BYTES}"));
        }
        let total = self.bytes - old + bytes;
        if total > MAX_BYTES {
            return Err(format!(
                "kv is full ({} of {MAX_BYTES} bytes); remove keys or let them expire (`ttl`)",
                self.bytes
            ));
        }
        self.entries.insert(k, Entry { value, expires, bytes });
        self.bytes = total;
        Ok(())
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn forget_expired(&mut self, now: Timestamp) {
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let keep = e.expires.is_none_or(|t| t > now);
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        self.bytes -= freed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_apart_values_expire_and_the_bounds_hold() {
        let mut kv = Kv::default();
        let t = Timestamp(1_000);
        kv.set("north", "last", Value::from("anna"), None, t).unwrap();
        kv.set("south", "last", Value::from("bo"), Some(Timestamp(2_000)), t).unwrap();
        assert_eq!(kv.get("north", "last", t), Some(&Value::from("anna")));
        assert_eq!(kv.get("south", "last", Timestamp(1_999)), Some(&Value::from("bo")));
        assert_eq!(kv.get("south", "last", Timestamp(2_000)), None);
        let big = Value::from("x".repeat(MAX_VALUE_BYTES));
        assert!(kv.set("north", "big", big, None, t).unwrap_err().contains("at most"));
        let before = kv.bytes();
        kv.set("north", "last", Value::Null, None, t).unwrap();
        assert_eq!(kv.get("north", "last", t), None);
        assert!(kv.bytes() < before);
    }
}
