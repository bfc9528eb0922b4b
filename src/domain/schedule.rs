//! On-duty schedules: rotations with handoffs at a wall-clock time in an IANA zone, overrides for
//! given periods, and layers tried in priority order.
//!
//! Handoffs are computed on the local calendar, not by adding hours to an instant: a rotation
//! that hands off at 09:00 hands off at 09:00 on both sides of a DST change. A handoff that falls
//! into a DST gap (02:30 on the night clocks jump from 02:00 to 03:00) happens when the gap ends;
//! one that falls twice (the night clocks go back) happens the first time.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::calendar::Calendar;
use crate::rules::Location;
use crate::time::{Duration, TimeError, Timestamp};

#[derive(Clone, Debug)]
pub struct ScheduleDef {
    pub id: String,
    pub unit: String,
    pub zone: Tz,
    /// Tried in order; the first that has someone on duty answers.
    pub layers: Vec<Layer>,
    /// Win over every layer while they last.
    pub overrides: Vec<Override>,
    pub at: Location,
}

#[derive(Clone, Debug)]
pub enum Layer {
    Rotation(Rotation),
    Calendar(Calendar),
}

/// Agents taking turns: the first from `start`, the next one `shift` later, and so on.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub agents: Vec<String>,
    /// The first handoff, in the schedule's zone.
    pub start: NaiveDateTime,
    /// Counted on the wall clock: `1d` is 09:00 to 09:00, 23 or 25 hours across a DST change.
    pub shift: Duration,
    /// The rotation covers nothing before `start` and nothing from `end` on.
    pub end: Option<NaiveDateTime>,
}

#[derive(Clone, Debug)]
pub struct Override {
    pub agent: String,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Who is on duty at an instant, and which part of the schedule says so.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OnDuty {
    pub agents: Vec<String>,
    /// `override`, `layer 1`, `layer 2`, ...
    pub source: String,
    /// When this answer started holding and when it stops (the next handoff), if known.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl ScheduleDef {
    /// Who is on duty at `t`: nobody if no override and no layer covers it.
    pub fn on_duty(&self, t: Timestamp) -> Option<OnDuty> {
        let overriding: Vec<&Override> = self.overrides.iter().filter(|o| o.from <= t && t < o.to).collect();
        if !overriding.is_empty() {
            return Some(OnDuty {
                agents: overriding.iter().map(|o| o.agent.clone()).collect(),
                source: "override".into(),
                since: overriding.iter().map(|o| o.from).max(),
                until: overriding.iter().map(|o| o.to).min(),
            });
        }
        self.layers.iter().enumerate().find_map(|(i, layer)| {
            let mut found = match layer {
                Layer::Rotation(r) => r.on_duty(self.zone, t),
                Layer::Calendar(c) => c.on_duty(t),
            }?;
            found.source = format!("layer {}", i + 1);
            Some(found)
        })
    }

    /// Every agent the schedule can name, for checking that they exist and share its unit.
    pub fn agents(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.overrides.iter().map(|o| o.agent.as_str()).collect();
        for layer in &self.layers {
            match layer {
                Layer::Rotation(r) => out.extend(r.agents.iter().map(String::as_str)),
                Layer::Calendar(c) => out.extend(c.agents()),
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

impl Rotation {
    fn on_duty(&self, zone: Tz, t: Timestamp) -> Option<OnDuty> {
        if self.agents.is_empty() || self.shift.0 <= 0 {
            return None;
        }
        let handoff = |n: i64| resolve(zone, self.start + chrono::Duration::milliseconds(self.shift.0 * n));
        if t < handoff(0) || self.end.is_some_and(|end| t >= resolve(zone, end)) {
            return None;
        }
        // A wall-clock shift differs from its length in elapsed time by at most the DST
        // shifts it spans, so the estimate is off by one at most; step until it fits.
        let mut n = (t - handoff(0)).0 / self.shift.0;
        while n > 0 && handoff(n) > t {
            n -= 1;
        }
        while handoff(n + 1) <= t {
            n += 1;
        }
        let agent = &self.agents[(n as usize) % self.agents.len()];
        let mut until = handoff(n + 1);
        if let Some(end) = self.end {
            until = until.min(resolve(zone, end));
        }
        Some(OnDuty { agents: vec![agent.clone()], source: String::new(), since: Some(handoff(n)), until: Some(until) })
    }
}

/// A wall-clock time in `zone` as an instant: a time inside a DST gap moves forward to the end of
/// the gap; a time that happens twice is taken the first time.
pub fn resolve(zone: Tz, local: NaiveDateTime) -> Timestamp {
    let at = |t: DateTime<Tz>| Timestamp(t.with_timezone(&Utc).timestamp_millis());
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => at(t),
        LocalResult::Ambiguous(first, _) => at(first),
        LocalResult::None => {
            // Gaps are whole minutes (at most a few hours); the first valid minute ends it.
            (1..=24 * 60)
                .find_map(|m| zone.from_local_datetime(&(local + chrono::Duration::minutes(m))).earliest())
                .map(at)
                .unwrap_or(Timestamp(local.and_utc().timestamp_millis()))
        }
    }
}

/// Parses an instant as people type one: RFC 3339 (`2026-11-02T09:00:00+01:00`), or a local
/// `2026-11-02 09:00` in `zone`. Schedules, `rota test` and the command line take both.
pub fn parse_instant(text: &str, zone: Tz) -> Result<Timestamp, TimeError> {
    match Timestamp::parse_rfc3339(text) {
        Ok(t) => Ok(t),
        Err(_) => parse_local(text).map(|local| resolve(zone, local)).map_err(|_| {
            TimeError(format!(
                "`{text}` is not a time; write it like 2026-11-02 09:00 ({zone}) or 2026-11-02T09:00:00+01:00"
            ))
        }),
    }
}

/// Parses `2026-11-02 09:00` or `2026-11-02T09:00[:00]` as a wall-clock time.
pub fn parse_local(text: &str) -> Result<NaiveDateTime, TimeError> {
    let t = text.trim().replace('T', " ");
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&t, f).ok())
        .ok_or_else(|| TimeError(format!("`{text}` is not a local time; write it like 2026-11-02 09:00")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oslo_rotation(start: &str, shift: &str) -> ScheduleDef {
        ScheduleDef {
            id: "duty".into(),
            unit: "default".into(),
            zone: "Europe/Oslo".parse().unwrap(),
            layers: vec![Layer::Rotation(Rotation {
                agents: vec!["ivan".into(), "olga".into()],
                start: parse_local(start).unwrap(),
                shift: Duration::parse(shift).unwrap(),
                end: None,
            })],
            overrides: Vec::new(),
            at: Location::default(),
        }
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn who(s: &ScheduleDef, t: &str) -> (String, String) {
        let d = s.on_duty(at(t)).expect("someone on duty");
        (d.agents.join(","), d.since.unwrap().to_rfc3339())
    }

    #[test]
    fn daily_handoffs_stay_at_nine_across_both_dst_changes() {
        // Oslo: CET (+01) until 2026-03-29 02:00, CEST (+02) until 2026-10-25 03:00.
        let s = oslo_rotation("2026-03-27 09:00", "1d");
        assert_eq!(who(&s, "2026-03-28T08:30:00Z"), ("olga".into(), "2026-03-28T08:00:00Z".into()));
        // After the spring change 09:00 is 07:00 UTC: the shift of the 28th was 23 hours.
        assert_eq!(who(&s, "2026-03-29T06:59:00Z"), ("olga".into(), "2026-03-28T08:00:00Z".into()));
        assert_eq!(who(&s, "2026-03-29T07:00:00Z"), ("ivan".into(), "2026-03-29T07:00:00Z".into()));

        let s = oslo_rotation("2026-10-23 09:00", "1d");
        assert_eq!(who(&s, "2026-10-24T07:00:00Z"), ("olga".into(), "2026-10-24T07:00:00Z".into()));
        // After the autumn change 09:00 is 08:00 UTC: the shift of the 24th was 25 hours.
        assert_eq!(who(&s, "2026-10-25T07:30:00Z"), ("olga".into(), "2026-10-24T07:00:00Z".into()));
        assert_eq!(who(&s, "2026-10-25T08:00:00Z"), ("ivan".into(), "2026-10-25T08:00:00Z".into()));
    }

    #[test]
    fn a_handoff_inside_the_dst_gap_happens_when_the_gap_ends() {
        // 02:30 does not exist in Oslo on 2026-03-29: clocks jump from 02:00 to 03:00 (01:00 UTC).
        let s = oslo_rotation("2026-03-27 02:30", "1d");
        assert_eq!(who(&s, "2026-03-29T00:59:00Z").0, "olga");
        assert_eq!(who(&s, "2026-03-29T01:00:00Z"), ("ivan".into(), "2026-03-29T01:00:00Z".into()));
        // The next night 02:30 exists again (00:30 UTC).
        assert_eq!(who(&s, "2026-03-30T00:30:00Z"), ("olga".into(), "2026-03-30T00:30:00Z".into()));
    }

    #[test]
    fn weekly_rotations_run_for_years_and_overrides_win() {
        let mut s = oslo_rotation("2026-01-05 09:00", "7d");
        // 2028-01-03 09:00 Oslo is 104 weeks on: an even number of handoffs, so ivan again.
        assert_eq!(who(&s, "2028-01-03T08:00:00Z").0, "ivan");
        assert_eq!(who(&s, "2028-01-03T07:59:00Z").0, "olga");
        assert!(s.on_duty(at("2026-01-05T07:59:00Z")).is_none(), "nobody before the first handoff");
        s.overrides.push(Override {
            agent: "anna".into(),
            from: at("2026-12-24T08:00:00Z"),
            to: at("2026-12-27T08:00:00Z"),
        });
        let d = s.on_duty(at("2026-12-25T12:00:00Z")).unwrap();
        assert_eq!((d.agents, d.source.as_str()), (vec!["anna".to_string()], "override"));
        // Sunday 27 December is in the week from Monday 21 December: handoff 50, ivan.
        assert_eq!(who(&s, "2026-12-27T08:00:00Z").0, "ivan");
    }

    #[test]
    fn a_later_layer_covers_what_the_first_leaves_open() {
        let mut s = oslo_rotation("2026-11-02 09:00", "1d");
        if let Layer::Rotation(r) = &mut s.layers[0] {
            r.end = Some(parse_local("2026-11-09 09:00").unwrap());
        }
        s.layers.push(Layer::Rotation(Rotation {
            agents: vec!["anna".into()],
            start: parse_local("2026-01-01 00:00").unwrap(),
            shift: Duration::parse("1d").unwrap(),
            end: None,
        }));
        let d = s.on_duty(at("2026-11-08T12:00:00Z")).unwrap();
        assert_eq!(d.source, "layer 1");
        assert_eq!(d.until, Some(at("2026-11-09T08:00:00Z")));
        let d = s.on_duty(at("2026-11-09T08:00:00Z")).unwrap();
        assert_eq!((d.agents[0].as_str(), d.source.as_str()), ("anna", "layer 2"));
    }
}
