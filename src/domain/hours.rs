//! Business hours: weekly opening times in a time zone, with holidays, as the host evaluates them
//! (daylight-saving changes included), for queues (`hours`, `after_hours`) and policies.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::calendar::Calendar;
use crate::rules::Location;
use crate::schedule::resolve;
use crate::time::Timestamp;

/// Weekday names as scripts write them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// How far ahead [`HoursDef::next_change`] looks: a year and a week covers any holiday list.
const LOOKAHEAD_DAYS: i64 = 372;

/// Named business hours (`hours.define`).
#[derive(Clone, Debug)]
pub struct HoursDef {
    pub id: String,
    pub unit: String,
    pub zone: Tz,
    /// Per weekday (Monday first), the open intervals as local minutes after midnight,
    /// `[from, to)`; `to` may be 1440 (`24:00`).
    pub weekly: [Vec<(u32, u32)>; 7],
    /// Local dates on which it is closed all day.
    pub holidays: BTreeSet<NaiveDate>,
    /// An .ics file in the scripts folder whose events close the days they cover (holidays,
    /// recurring ones included), and the calendar read from it.
    pub calendar_file: Option<String>,
    pub calendar: Option<Calendar>,
    pub at: Location,
}

impl HoursDef {
    /// Whether it is open at `t`.
    pub fn open_at(&self, t: Timestamp) -> bool {
        let Some(local) = self.local(t) else { return false };
        if self.closed_on(local.date()) {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        self.weekly[local.weekday().num_days_from_monday() as usize]
            .iter()
            .any(|&(from, to)| from <= minute && minute < to)
    }

    /// The first instant after `t` at which it opens or closes, if that happens within a year.
    pub fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let now_open = self.open_at(t);
        let start = self.local(t)?.date();
        (0..=LOOKAHEAD_DAYS).map(|d| start + chrono::Duration::days(d)).find_map(|date| {
            let day = &self.weekly[date.weekday().num_days_from_monday() as usize];
            // A day's edges, and midnight (a holiday begins or ends there), in time order.
            let mut edges: Vec<u32> = day.iter().flat_map(|&(from, to)| [from, to]).chain([0]).collect();
            edges.sort_unstable();
            edges.dedup();
            edges
                .into_iter()
                .filter_map(|minute| self.instant(date, minute))
                .find(|&edge| edge > t && self.open_at(edge) != now_open)
        })
    }

    /// Whether `date` is a holiday: listed, or covered at noon by an event of the calendar.
    fn closed_on(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
            || self.calendar.as_ref().is_some_and(|c| {
                self.instant(date, 12 * 60).and_then(|noon| c.on_duty(noon)).is_some_and(|d| !d.agents.is_empty())
            })
    }

    fn local(&self, t: Timestamp) -> Option<NaiveDateTime> {
        self.zone.timestamp_millis_opt(t.0).single().map(|d| d.naive_local())
    }

    /// The instant of `minute` after local midnight of `date` (1440 is the next midnight); a
    /// time in a daylight-saving gap is the end of the gap.
    fn instant(&self, date: NaiveDate, minute: u32) -> Option<Timestamp> {
        let (date, minute) = if minute >= 1440 { (date.succ_opt()?, minute - 1440) } else { (date, minute) };
        let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?;
        Some(resolve(self.zone, date.and_time(time)))
    }
}

/// Parses `"08:00-17:00"` into local minutes `[from, to)`; `24:00` may end an interval.
pub fn parse_interval(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{text}` is not an interval like \"08:00-17:00\"");
    let (from, to) = text.split_once('-').ok_or_else(bad)?;
    let minute = |s: &str| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    };
    let (from, to) = (minute(from).ok_or_else(bad)?, minute(to).ok_or_else(bad)?);
    if from >= to {
        return Err(format!("`{text}` ends before it starts (an interval past midnight is two: \"22:00-24:00\" and \"00:00-06:00\" the next day)"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office() -> HoursDef {
        let mut weekly: [Vec<(u32, u32)>; 7] = Default::default();
        for day in weekly.iter_mut().take(5) {
            day.push(parse_interval("08:00-16:00").unwrap());
        }
        HoursDef {
            id: "office".into(),
            unit: "default".into(),
            zone: "Europe/Oslo".parse().unwrap(),
            weekly,
            holidays: [NaiveDate::from_ymd_opt(2026, 4, 2).unwrap()].into(),
            calendar_file: None,
            calendar: None,
            at: Location::default(),
        }
    }

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn opening_follows_local_time_across_daylight_saving_and_skips_holidays() {
        let h = office();
        // Friday 27 March 2026, Oslo on CET (UTC+1): opens 07:00 UTC.
        assert!(!h.open_at(t("2026-03-27T06:59:00Z")));
        assert!(h.open_at(t("2026-03-27T07:00:00Z")));
        // Monday 30 March, after the change to CEST (UTC+2): opens 06:00 UTC.
        assert!(h.open_at(t("2026-03-30T06:00:00Z")));
        assert_eq!(h.next_change(t("2026-03-27T15:30:00Z")), Some(t("2026-03-30T06:00:00Z")));
        // Thursday 2 April is a holiday: closed Wednesday evening until Friday morning.
        assert!(!h.open_at(t("2026-04-02T10:00:00Z")));
        assert_eq!(h.next_change(t("2026-04-01T14:00:00Z")), Some(t("2026-04-03T06:00:00Z")));
    }

    #[test]
    fn intervals_are_checked() {
        assert_eq!(parse_interval("08:00-24:00"), Ok((480, 1440)));
        assert!(parse_interval("17:00-08:00").unwrap_err().contains("ends before it starts"));
        assert!(parse_interval("8-17").is_err());
        assert!(parse_interval("08:00-24:30").is_err());
    }
}
