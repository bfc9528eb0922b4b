//! Partitions: organization units grouped so that each group runs in an engine loop of its own,
//! with its own journal stream, clock and timers, so a center's work can use more than one core
//! (and, on PostgreSQL, be owned under a lease of its own).
//!
//! A unit's partition is the one an explicit map names, else its name hashed (64-bit FNV-1a,
//! which never changes between versions) onto the partition count. One partition holds every
//! unit: that is rota without partitions. Definitions shared by all units (presences, teams,
//! templates, policies, hours) are in every partition; agents, queues, schedules, standby rules
//! and workflows only in their unit's.

use std::collections::BTreeMap;
use std::sync::Arc;

/// How units are grouped into partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partitioning {
    count: u32,
    /// Units placed by hand, by partition index.
    map: BTreeMap<String, u32>,
}

/// Why a partitioning cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitioningError {
    #[error("the partition count must be at least 1")]
    NoPartitions,
    #[error("unit `{unit}` is placed in partition {index}, but there are only {count} (0 to {})", count - 1)]
    OutOfRange { unit: String, index: u32, count: u32 },
}

impl Default for Partitioning {
    fn default() -> Self {
        Partitioning::single()
    }
}

impl Partitioning {
    /// One partition holding every unit.
    pub fn single() -> Self {
        Partitioning { count: 1, map: BTreeMap::new() }
    }

    /// `count` partitions; the units `map` names go where it says, the others are hashed.
    pub fn new(count: u32, map: BTreeMap<String, u32>) -> Result<Self, PartitioningError> {
        if count == 0 {
            return Err(PartitioningError::NoPartitions);
        }
        if let Some((unit, &index)) = map.iter().find(|(_, &i)| i >= count) {
            return Err(PartitioningError::OutOfRange { unit: unit.clone(), index, count });
        }
        Ok(Partitioning { count, map })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The index of the partition holding `unit`.
    pub fn of(&self, unit: &str) -> u32 {
        match self.map.get(unit) {
            Some(&i) => i,
            None => (fnv1a(unit) % u64::from(self.count)) as u32,
        }
    }

    /// Partition `index` of these.
    pub fn part(self: &Arc<Self>, index: u32) -> Partition {
        Partition { index, of: self.clone() }
    }

    /// Every partition, by index.
    pub fn parts(self: &Arc<Self>) -> Vec<Partition> {
        (0..self.count).map(|i| self.part(i)).collect()
    }

    /// The whole grouping in one line, as a store records it: a store written under one
    /// partitioning is never read under another (a unit's state would be in the wrong journal).
    pub fn fingerprint(&self) -> String {
        let mut out = format!("fnv1a/{}", self.count);
        // With one partition every unit is in it, wherever the map says.
        for (unit, index) in self.map.iter().filter(|_| self.count > 1) {
            out.push_str(&format!(" {unit}={index}"));
        }
        out
    }
}

/// One partition: its index among its partitioning's.
#[derive(Clone, Debug)]
pub struct Partition {
    pub index: u32,
    pub of: Arc<Partitioning>,
}

impl Default for Partition {
    fn default() -> Self {
        Arc::new(Partitioning::single()).part(0)
    }
}

impl Partition {
    /// Whether `unit`'s things live in this partition.
    pub fn holds(&self, unit: &str) -> bool {
        self.of.of(unit) == self.index
    }

    /// Its name: `all` when it is the only one, else `p` and its index.
    pub fn name(&self) -> String {
        match self.of.count {
            1 => "all".to_string(),
            _ => format!("p{}", self.index),
        }
    }

    /// How this partition numbers what it makes (notifications, workflow instances, tasks):
    /// every partition's numbers are its own, so an id names one thing whichever partition
    /// made it (receivers drop repeated delivery ids). With one partition: 1, 2, 3, ...
    pub fn numbering(&self) -> Numbering {
        Numbering { first: u64::from(self.index) + 1, step: u64::from(self.of.count) }
    }
}

/// Numbers `first`, `first + step`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numbering {
    pub first: u64,
    pub step: u64,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering { first: 1, step: 1 }
    }
}

impl Numbering {
    /// The number after `n`.
    pub fn after(self, n: u64) -> u64 {
        n + self.step
    }
}

fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_placed_by_the_map_else_by_a_hash_that_never_changes() {
        let map = BTreeMap::from([("north".to_string(), 1)]);
        let p = Arc::new(Partitioning::new(2, map).unwrap());
        assert_eq!(p.of("north"), 1);
        // FNV-1a's published values, pinned: a change of hash would move units between journals.
        assert_eq!((fnv1a(""), fnv1a("a")), (0xcbf2_9ce4_8422_2325, 0xaf63_dc4c_8601_ec8c));
        let parts = p.parts();
        assert!(parts[1].holds("north") && !parts[0].holds("north"));
        assert_eq!(parts.iter().filter(|part| part.holds("anything")).count(), 1);
        assert_eq!((parts[0].name(), Partition::default().name()), ("p0".to_string(), "all".to_string()));
        assert_eq!(p.fingerprint(), "fnv1a/2 north=1");
        let one = Partitioning::new(1, BTreeMap::from([("north".to_string(), 0)])).unwrap();
        assert_eq!(one.fingerprint(), Partitioning::single().fingerprint());
        let out = Partitioning::new(2, BTreeMap::from([("x".to_string(), 2)])).unwrap_err();
        assert_eq!(out.to_string(), "unit `x` is placed in partition 2, but there are only 2 (0 to 1)");
        assert_eq!(Partitioning::new(0, BTreeMap::new()), Err(PartitioningError::NoPartitions));
    }

    #[test]
    fn each_partition_numbers_apart_and_one_partition_as_before() {
        let p = Arc::new(Partitioning::new(3, BTreeMap::new()).unwrap());
        let seq =
            |n: Numbering| std::iter::successors(Some(n.first), |&x| Some(n.after(x))).take(3).collect::<Vec<_>>();
        assert_eq!(seq(p.part(0).numbering()), [1, 4, 7]);
        assert_eq!(seq(p.part(2).numbering()), [3, 6, 9]);
        assert_eq!(seq(Partition::default().numbering()), [1, 2, 3]);
    }
}
