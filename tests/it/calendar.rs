//! On-duty calendars as Outlook exports them (tests/fixtures/calendar/duty.ics: Windows zone
//! names, a weekly RRULE with UNTIL and EXDATEs, a moved instance, a COUNTed series in an IANA
//! zone, an all-day event, a cancelled one), read through a schedule. The cases are data: an
//! instant in, who is on duty out.

use crate::common;

use common::{fixture, Scratch};
use rota::script::{check, Limits};
use rota::time::Timestamp;

/// (when, in UTC; who is on duty; the layer that says so; why)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("2026-10-19T07:30:00Z", "dan", "layer 1", "Monday 09:30 CEST: Dan's weekly duty (W. Europe Standard Time)"),
    ("2026-10-26T07:30:00Z", "pia", "layer 2", "Monday 08:30 CET after the clocks went back: not yet 09:00"),
    ("2026-10-26T08:30:00Z", "dan", "layer 1", "Monday 09:30 CET: the duty stays at 09:00 wall-clock time"),
    ("2026-10-26T19:30:00Z", "dan", "layer 1", "20:30 CET, before the 21:00 end"),
    ("2026-11-16T10:00:00Z", "pia", "layer 2", "an EXDATE"),
    ("2026-12-07T10:00:00Z", "pia", "layer 2", "the second date of the same EXDATE line"),
    ("2026-11-23T10:00:00Z", "pia", "layer 2", "this Monday's instance was moved (RECURRENCE-ID)..."),
    ("2026-11-25T10:00:00Z", "dan", "layer 1", "...to Wednesday"),
    ("2026-11-11T10:00:00Z", "pia", "layer 2", "a cancelled event is no duty"),
    ("2026-11-10T10:00:00Z", "sofie", "layer 1", "Sofie's Tuesdays: her name is the summary (Europe/Oslo)"),
    ("2026-12-08T10:00:00Z", "sofie", "layer 1", "the tenth and last Tuesday (COUNT=10)"),
    ("2026-12-15T10:00:00Z", "pia", "layer 2", "after COUNT ran out"),
    ("2026-12-23T23:30:00Z", "sofie", "layer 1", "an all-day event starts at midnight in the schedule's zone"),
    ("2026-12-24T22:59:00Z", "sofie", "layer 1", "and lasts until the next midnight there"),
    ("2026-12-24T23:30:00Z", "pia", "layer 2", "Christmas Day"),
    ("2027-03-22T19:30:00Z", "dan", "layer 1", "20:30 CET, the last Monday of winter time"),
    ("2027-03-29T06:30:00Z", "pia", "layer 2", "Monday 08:30 CEST after the clocks went forward"),
    ("2027-03-29T07:30:00Z", "dan", "layer 1", "Monday 09:30 CEST: still 09:00 wall-clock time"),
    ("2027-03-29T19:30:00Z", "pia", "layer 2", "21:30 CEST: ended at 21:00"),
    ("2027-04-05T07:30:00Z", "dan", "layer 1", "the last Monday, on UNTIL"),
    ("2027-04-12T07:30:00Z", "pia", "layer 2", "after UNTIL"),
];

#[test]
fn outlook_calendar_says_who_is_on_duty() {
    let rules = check(&fixture("calendar"), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let schedule = &rules.schedules["duty"];
    let mut failures = Vec::new();
    for (at, agent, layer, why) in CASES {
        let got = schedule.on_duty(Timestamp::parse_rfc3339(at).unwrap());
        let got = got.map(|d| (d.agents.join(","), d.source));
        if got.as_ref().map(|(a, s)| (a.as_str(), s.as_str())) != Some((agent, layer)) {
            failures.push(format!("{at} ({why}): expected {agent} from {layer}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_schedule_command_reads_the_calendar() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["schedule", "who", "duty"])
        .arg(fixture("calendar"))
        .args(["--at", "2026-11-25T10:00:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "dan (layer 1; since 2026-11-25 09:00 CET, until 2026-11-25 21:00 CET)"
    );
}

#[test]
fn an_event_naming_nobody_known_is_a_diagnostic_at_its_line() {
    let ics =
        std::fs::read_to_string(fixture("calendar/duty.ics")).unwrap().replace("SUMMARY:Sofie Lund", "SUMMARY:Sophie");
    let dir = Scratch::new(&[
        ("rules.lua", &std::fs::read_to_string(fixture("calendar/rules.lua")).unwrap()),
        ("duty.ics", &ics),
    ]);
    let err = check(&dir.0, &Limits::default()).expect_err("rejected");
    let got: Vec<String> = err.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(got, ["duty.ics:59: event `Sophie` names no known agent (tried: Sophie)"]);
}
