//! On-duty calendars imported from iCalendar (.ics) files, as Outlook/Exchange export them.
//!
//! Each VEVENT is one duty period: its attendee (by email or name) or else its summary names the
//! agent. Recurrences (RRULE with EXDATE exceptions; moved instances as RECURRENCE-ID events) are
//! expanded with the `rrule` crate in the event's own zone, so a weekly 09:00 duty stays at 09:00
//! across DST. Windows zone names (`W. Europe Standard Time`) are mapped to IANA ones; floating
//! times and all-day dates are read in the schedule's own zone.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use icalendar::parser::{read_calendar, unfold, Component, Property};
use rrule::RRuleSet;

use crate::schedule::OnDuty;
use crate::time::Timestamp;

/// A duty calendar: its events, each resolved to an agent.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub events: Vec<DutyEvent>,
}

#[derive(Clone, Debug)]
pub struct DutyEvent {
    pub agent: String,
    /// The occurrences' start times (one for a single event).
    pub starts: Occurrences,
    pub length_ms: i64,
}

#[derive(Clone, Debug)]
pub enum Occurrences {
    Once(Timestamp),
    Recurring(Box<RRuleSet>),
}

/// Most occurrences looked at for one question; a daily event expands to ~27 years.
const MAX_OCCURRENCES: usize = 10_000;

impl Calendar {
    /// Parses an .ics file. `agent` maps what an event names (an email, a name, an id) to an
    /// agent id; `floating` is the zone of times without one (the schedule's). Errors are (line,
    /// message) pairs; an event naming no known agent is one.
    pub fn parse(
        text: &str,
        floating: Tz,
        agent: impl Fn(&str) -> Option<String>,
    ) -> Result<Calendar, Vec<(Option<u32>, String)>> {
        let unfolded = unfold(text);
        let parsed = read_calendar(&unfolded).map_err(|e| vec![(None, format!("not an iCalendar file: {e}"))])?;
        // Counted in the file as written: folded lines would shift the count in `unfolded`.
        let lines: Vec<u32> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim().eq_ignore_ascii_case("BEGIN:VEVENT"))
            .map(|(i, _)| i as u32 + 1)
            .collect();
        let vevents: Vec<&Component> = parsed.components.iter().filter(|c| c.name == "VEVENT").collect();
        // Moved or cancelled instances of a recurring event: excluded from their series.
        let mut moved: Vec<(String, Timestamp)> = Vec::new();
        for c in &vevents {
            if let (Some(uid), Some(rid)) = (c.find_prop("UID"), c.find_prop("RECURRENCE-ID")) {
                if let Ok(t) = instant(rid, floating) {
                    moved.push((uid.val.to_string(), t));
                }
            }
        }
        let mut events = Vec::new();
        let mut problems = Vec::new();
        for (i, c) in vevents.iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            if c.find_prop("STATUS").is_some_and(|s| s.val.as_str().eq_ignore_ascii_case("CANCELLED")) {
                continue;
            }
            match event(c, floating, &moved, &agent) {
                Ok(e) => events.push(e),
                Err(e) => problems.push((Some(line), e)),
            }
        }
        if problems.is_empty() {
            Ok(Calendar { events })
        } else {
            Err(problems)
        }
    }

    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|e| e.agent.as_str())
    }

    /// Agents whose duty event covers `t`, in file order.
    pub fn on_duty(&self, t: Timestamp) -> Option<OnDuty> {
        let mut found = OnDuty { agents: Vec::new(), source: String::new(), since: None, until: None };
        for e in &self.events {
            if let Some(start) = e.covering(t) {
                if !found.agents.contains(&e.agent) {
                    found.agents.push(e.agent.clone());
                }
                found.since = found.since.max(Some(start));
                let end = Timestamp(start.0 + e.length_ms);
                found.until = Some(found.until.map_or(end, |u| u.min(end)));
            }
        }
        (!found.agents.is_empty()).then_some(found)
    }
}

impl DutyEvent {
    /// The start of the occurrence that covers `t`, if one does.
    fn covering(&self, t: Timestamp) -> Option<Timestamp> {
        let covers = |start: Timestamp| start <= t && t.0 < start.0 + self.length_ms;
        match &self.starts {
            Occurrences::Once(start) => covers(*start).then_some(*start),
            Occurrences::Recurring(set) => set
                .into_iter()
                .take(MAX_OCCURRENCES)
                .map(|d| Timestamp(d.timestamp_millis()))
                .take_while(|&start| start <= t)
                .filter(|&start| covers(start))
                .last(),
        }
    }
}

fn event(
    c: &Component,
    floating: Tz,
    moved: &[(String, Timestamp)],
    agent: &impl Fn(&str) -> Option<String>,
) -> Result<DutyEvent, String> {
    let summary = c.find_prop("SUMMARY").map(|p| p.val.to_string()).unwrap_or_default();
    let dtstart = c.find_prop("DTSTART").ok_or("event has no DTSTART")?;
    let start = instant(dtstart, floating)?;
    let length_ms = match (c.find_prop("DTEND"), c.find_prop("DURATION")) {
        (Some(end), _) => instant(end, floating)?.0 - start.0,
        (None, Some(d)) => iso_duration(d.val.as_str())?,
        (None, None) if is_date(dtstart) => 86_400_000,
        (None, None) => return Err(format!("event `{summary}` has neither DTEND nor DURATION")),
    };
    if length_ms <= 0 {
        return Err(format!("event `{summary}` ends before it starts"));
    }
    let mut candidates = Vec::new();
    // Attendees first (the organizer is whoever keeps the calendar), the summary last.
    for p in c.properties.iter().filter(|p| p.name == "ATTENDEE") {
        let value = p.val.as_str();
        if let Some(email) = value.strip_prefix("mailto:").or_else(|| value.strip_prefix("MAILTO:")) {
            candidates.push(email.to_string());
        }
        if let Some(cn) = param(p, "CN") {
            candidates.push(cn.trim_matches('"').to_string());
        }
    }
    candidates.push(summary.clone());
    let agent = candidates
        .iter()
        .find_map(|name| agent(name))
        .ok_or_else(|| format!("event `{summary}` names no known agent (tried: {})", candidates.join(", ")))?;

    let uid = c.find_prop("UID").map(|p| p.val.to_string());
    let rrules: Vec<&Property> = c.properties.iter().filter(|p| p.name == "RRULE").collect();
    let starts = if rrules.is_empty() || c.find_prop("RECURRENCE-ID").is_some() {
        Occurrences::Once(start)
    } else {
        let mut text = format!("DTSTART{}", rrule_time(dtstart, floating)?);
        for r in &rrules {
            text.push_str(&format!("\nRRULE:{}", r.val));
        }
        for p in c.properties.iter().filter(|p| p.name == "EXDATE") {
            for value in p.val.as_str().split(',') {
                let one = Property { name: p.name.clone(), val: value.into(), params: p.params.clone() };
                text.push_str(&format!("\nEXDATE{}", rrule_time(&one, floating)?));
            }
        }
        for (_, t) in moved.iter().filter(|(u, _)| Some(u) == uid.as_ref()) {
            let utc = chrono::DateTime::from_timestamp_millis(t.0).unwrap_or_default();
            text.push_str(&format!("\nEXDATE:{}", utc.format("%Y%m%dT%H%M%SZ")));
        }
        let set = RRuleSet::from_str(&text).map_err(|e| format!("event `{summary}`: recurrence: {e}"))?;
        Occurrences::Recurring(Box::new(set))
    };
    Ok(DutyEvent { agent, starts, length_ms })
}

fn param<'a>(p: &'a Property, key: &str) -> Option<&'a str> {
    p.params.iter().find(|x| x.key.as_str().eq_ignore_ascii_case(key)).and_then(|x| x.val.as_ref()).map(|v| v.as_str())
}

fn is_date(p: &Property) -> bool {
    param(p, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || p.val.as_str().len() == 8
}

/// The zone a value is in: UTC when it ends in `Z`, else the zone its TZID names (IANA, or a
/// Windows name as Outlook writes them), else `floating`.
fn zone(p: &Property, floating: Tz) -> Result<Tz, String> {
    if p.val.as_str().ends_with('Z') {
        return Ok(Tz::UTC);
    }
    let Some(tzid) = param(p, "TZID") else { return Ok(floating) };
    let tzid = tzid.trim_matches('"');
    if let Ok(tz) = tzid.parse::<Tz>() {
        return Ok(tz);
    }
    WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(tzid))
        .map(|(_, iana)| iana.parse().expect("table holds IANA names"))
        .ok_or_else(|| format!("unknown time zone `{tzid}`"))
}

/// The wall-clock time a value names; a date is its midnight.
fn local(p: &Property) -> Result<NaiveDateTime, String> {
    let v = p.val.as_str().trim_end_matches('Z');
    if is_date(p) {
        return NaiveDate::parse_from_str(v, "%Y%m%d")
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
            .map_err(|e| format!("bad date `{v}`: {e}"));
    }
    NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").map_err(|e| format!("bad date-time `{v}`: {e}"))
}

/// A DTSTART/DTEND/EXDATE/RECURRENCE-ID value as an instant.
fn instant(p: &Property, floating: Tz) -> Result<Timestamp, String> {
    Ok(crate::schedule::resolve(zone(p, floating)?, local(p)?))
}

/// A time as the `rrule` crate reads it after `DTSTART`/`EXDATE`: `;TZID=Europe/Oslo:20261102T090000`.
fn rrule_time(p: &Property, floating: Tz) -> Result<String, String> {
    let (tz, t) = (zone(p, floating)?, local(p)?);
    Ok(match tz {
        Tz::UTC => format!(":{}", t.format("%Y%m%dT%H%M%SZ")),
        _ => format!(";TZID={}:{}", tz.name(), t.format("%Y%m%dT%H%M%S")),
    })
}

/// `PT12H`, `P1D`, `P1W`, `P1DT2H30M` in milliseconds.
fn iso_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("bad DURATION `{text}`");
    let rest = text.trim_start_matches('+').strip_prefix('P').ok_or_else(bad)?;
    let (mut total, mut number, mut in_time) = (0i64, String::new(), false);
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                total += n * match (unit, in_time) {
                    ('W', false) => 604_800_000,
                    ('D', false) => 86_400_000,
                    ('H', true) => 3_600_000,
                    ('M', true) => 60_000,
                    ('S', true) => 1000,
                    _ => return Err(bad()),
                };
            }
        }
    }
    Ok(total)
}

/// Windows zone names Exchange writes in TZID, to IANA (CLDR's windowsZones, territory 001).
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("UTC", "UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("Romance Standard Time", "Europe/Paris"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("India Standard Time", "Asia/Kolkata"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("Eastern Standard Time", "America/New_York"),
    ("Central Standard Time", "America/Chicago"),
    ("Mountain Standard Time", "America/Denver"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
];
