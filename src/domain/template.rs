//! Message templates: a subject, an email body (HTML) and an SMS body, checked when the scripts
//! load and rendered with minijinja.
//!
//! A template is compiled once per generation. Loading checks its syntax and that it uses only
//! the parameters its messages will have (strict undefined at render time is the safety net), so
//! a typo is a diagnostic with file:line, not a message with a hole in it. Rendering escapes
//! values in the email body, keeps CR/LF out of the subject, and measures and cuts the SMS body.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior, Value};
use serde::Serialize;

use crate::rules::Location;
use crate::time::Timestamp;

/// Marker put at the end of an SMS body that was cut to its maximum length.
pub const SMS_CUT_MARKER: &str = "…";

/// Default maximum SMS length, in characters: three concatenated GSM-7 segments.
pub const DEFAULT_SMS_MAX: usize = 459;

/// Render steps one message may take; a template looping over a huge value stops here.
const FUEL: u64 = 50_000;

/// A template as the scripts define it.
#[derive(Clone, Debug)]
pub struct TemplateDef {
    pub id: String,
    pub unit: String,
    pub subject: String,
    /// HTML; values are escaped.
    pub email: Option<String>,
    pub sms: Option<String>,
    /// SMS bodies longer than this many characters are cut, with [`SMS_CUT_MARKER`].
    pub sms_max: usize,
    pub at: Location,
}

/// Which message a template renders: the parameters differ (only a clearing message knows who
/// answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Notification,
    Clearing,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Notification => "notification",
            Kind::Clearing => "clearing",
        }
    }
}

/// Parameters every message has: `name` alone, or `name.field`.
const PARAMETERS: &[(&str, &[&str])] = &[
    ("caller", &["name", "number", "sip"]),
    ("service", &["name", "number", "sip"]),
    ("queue", &["id", "name"]),
    ("conversation", &["id", "channel", "waited", "attempts", "status"]),
    ("recipient", &["id", "name", "email", "phone", "time_zone"]),
    ("event", &["type", "name", "reason", "channel"]),
    ("rule", &["id"]),
    ("now", &[]),
];

/// Parameters only a clearing message has.
const CLEARING_PARAMETERS: &[(&str, &[&str])] = &[("answered_by", &["id", "name", "email", "phone"])];

/// A party of the conversation as templates see it; missing values are empty strings, so a
/// template can write `{{ caller.name or caller.number }}`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartyParams {
    pub name: String,
    pub number: String,
    pub sip: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentParams {
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub time_zone: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueParams {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConversationParams {
    pub id: String,
    pub channel: String,
    /// Seconds since the conversation arrived; format with `| duration`.
    pub waited: f64,
    pub attempts: usize,
    pub status: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EventParams {
    #[serde(rename = "type")]
    pub kind: String,
    /// A custom event's name; empty otherwise.
    pub name: String,
    pub reason: String,
    /// For a delivery failure, the channel that failed.
    pub channel: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleParams {
    pub id: String,
}

/// Everything a message can show.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Params {
    pub caller: PartyParams,
    pub service: PartyParams,
    pub queue: QueueParams,
    pub conversation: ConversationParams,
    pub recipient: AgentParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<AgentParams>,
    pub event: EventParams,
    pub rule: RuleParams,
    /// RFC 3339, UTC; format with `| datetime`.
    pub now: String,
}

impl Params {
    /// Data to preview a template with when there is no conversation to take it from.
    pub fn sample(kind: Kind, now: Timestamp) -> Params {
        let agent = |id: &str, name: &str, phone: &str| AgentParams {
            id: id.into(),
            name: name.into(),
            email: format!("{id}@example.com"),
            phone: phone.into(),
            time_zone: "Europe/Oslo".into(),
        };
        Params {
            caller: PartyParams {
                name: "Kari Nordmann".into(),
                number: "+4791234567".into(),
                sip: "sip:kari@example.net".into(),
            },
            service: PartyParams {
                name: "Customer support".into(),
                number: "+4722000000".into(),
                sip: "sip:support@example.com".into(),
            },
            queue: QueueParams { id: "support".into(), name: "Customer support".into() },
            conversation: ConversationParams {
                id: "c-1001".into(),
                channel: "voice".into(),
                waited: 95.0,
                attempts: 2,
                status: "queued".into(),
            },
            recipient: agent("duty", "Duty Agent", "+4790000001"),
            answered_by: (kind == Kind::Clearing).then(|| agent("primary", "Primary Agent", "+4790000002")),
            event: EventParams {
                kind: "missed".into(),
                reason: "Primary Agent did not answer in time".into(),
                ..EventParams::default()
            },
            rule: RuleParams { id: "standby".into() },
            now: now.to_rfc3339(),
        }
    }
}

/// A rendered message, ready for any channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Rendered {
    /// One line: CR, LF and other control characters became spaces.
    pub subject: String,
    pub email: Option<String>,
    pub sms: Option<Sms>,
}

/// An SMS body with what it will cost.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Sms {
    pub body: String,
    /// Characters.
    pub length: usize,
    pub segments: u32,
    /// `gsm7` or `ucs2`: which alphabet the body needs, which sets the segment size.
    pub encoding: String,
    pub truncated: bool,
}

/// The templates of one generation, compiled.
#[derive(Clone, Debug)]
pub struct Templates {
    env: Environment<'static>,
    defs: BTreeMap<String, TemplateDef>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates { env: environment(), defs: BTreeMap::new() }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.add_filter("datetime", datetime);
    env.add_filter("duration", duration);
    env
}

/// `{{ now | datetime }}`, `{{ now | datetime("%H:%M") }}`, `{{ now | datetime("%H:%M", "UTC") }}`:
/// an RFC 3339 time in a zone (the recipient's unless one is given; UTC if neither).
fn datetime(
    state: &State,
    value: String,
    format: Option<String>,
    zone: Option<String>,
) -> Result<String, minijinja::Error> {
    let invalid = |m: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, m);
    let t =
        chrono::DateTime::parse_from_rfc3339(&value).map_err(|e| invalid(format!("`{value}` is not a time: {e}")))?;
    let zone = match zone {
        Some(z) => z,
        None => state
            .lookup("recipient")
            .and_then(|r| r.get_attr("time_zone").ok())
            .and_then(|z| z.as_str().map(str::to_string))
            .filter(|z| !z.is_empty())
            .unwrap_or_else(|| "UTC".into()),
    };
    let tz: Tz = zone.parse().map_err(|_| invalid(format!("unknown time zone `{zone}`")))?;
    let format = format.unwrap_or_else(|| "%Y-%m-%d %H:%M %Z".into());
    let mut out = String::new();
    use std::fmt::Write;
    write!(out, "{}", t.with_timezone(&tz).format(&format))
        .map_err(|_| invalid(format!("bad time format `{format}`")))?;
    Ok(out)
}

/// `{{ conversation.waited | duration }}`: seconds as `1h 5m`, `2m 30s`, `45s`.
fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as i64;
    let (d, h, m, s) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.into_iter().take(2).collect::<Vec<_>>().join(" ")
    }
}

impl Templates {
    /// Compiles every template; problems come back as (location, message) for diagnostics.
    pub fn compile(defs: Vec<TemplateDef>) -> (Templates, Vec<(Location, String)>) {
        let mut templates = Templates::default();
        let mut problems = Vec::new();
        for def in defs {
            if templates.defs.contains_key(&def.id) {
                problems.push((def.at.clone(), format!("template `{}` is already defined", def.id)));
                continue;
            }
            let mut ok = true;
            for (part, source) in def.parts() {
                let name = part_name(&def.id, part);
                if let Err(e) = templates.env.add_template_owned(name, source.to_string()) {
                    problems.push((def.at.clone(), describe_error(&def.id, part, &e)));
                    ok = false;
                }
            }
            if ok {
                for problem in templates.unknown_names(&def) {
                    problems.push((def.at.clone(), problem));
                }
                templates.defs.insert(def.id.clone(), def);
            }
        }
        (templates, problems)
    }

    /// Filters, tests and functions a template names that do not exist, found by rendering it
    /// with sample data (minijinja looks them up as it renders): at load, not at the first
    /// message. Other render errors depend on the data and are left to run time.
    fn unknown_names(&self, def: &TemplateDef) -> Vec<String> {
        use minijinja::ErrorKind::{UnknownFilter, UnknownFunction, UnknownMethod, UnknownTest};
        let ctx = Value::from(Serde(Params::sample(Kind::Clearing, Timestamp(0))));
        def.parts()
            .filter_map(|(part, _)| {
                let e = self.env.get_template(&part_name(&def.id, part)).and_then(|t| t.render(ctx.clone())).err()?;
                matches!(e.kind(), UnknownFilter | UnknownTest | UnknownFunction | UnknownMethod)
                    .then(|| describe_error(&def.id, part, &e))
            })
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<&TemplateDef> {
        self.defs.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.defs.keys()
    }

    /// Parameters `id` uses that a message of `kind` does not have, as `part: name`.
    pub fn unknown_parameters(&self, id: &str, kind: Kind) -> Vec<String> {
        let Some(def) = self.defs.get(id) else { return Vec::new() };
        let mut out = Vec::new();
        for (part, _) in def.parts() {
            let Ok(t) = self.env.get_template(&part_name(id, part)) else { continue };
            let mut used: Vec<String> = t.undeclared_variables(true).into_iter().collect();
            used.sort();
            for name in used {
                if !known(&name, kind) {
                    out.push(format!("{part} uses `{name}`, {}", why_unknown(&name, kind)));
                }
            }
        }
        out
    }

    /// Renders template `id` with `params`. Errors (which loading makes rare: a bad time format,
    /// the fuel running out) are messages saying which part failed.
    pub fn render(&self, id: &str, params: &Params) -> Result<Rendered, RenderError> {
        let def = self.defs.get(id).ok_or_else(|| RenderError(format!("template `{id}` is not defined")))?;
        let ctx = Value::from(Serde(params));
        let part = |part: &str| -> Result<String, RenderError> {
            self.env
                .get_template(&part_name(id, part))
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| RenderError(describe_error(id, part, &e)))
        };
        let subject = one_line(&part("subject")?);
        let email = def.email.as_ref().map(|_| part("email")).transpose()?;
        let sms = def.sms.as_ref().map(|_| part("sms").map(|body| measure_sms(&body, def.sms_max))).transpose()?;
        Ok(Rendered { subject, email, sms })
    }
}

/// Why a message could not be made from a template: which template and part, and what failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

impl TemplateDef {
    /// The parts it has, as (part name, source).
    fn parts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("subject", Some(&self.subject)), ("email", self.email.as_ref()), ("sms", self.sms.as_ref())]
            .into_iter()
            .filter_map(|(part, source)| source.map(|s| (part, s.as_str())))
    }
}

/// Email bodies are named `.html`, which turns auto-escaping on for them alone.
fn part_name(id: &str, part: &str) -> String {
    match part {
        "email" => format!("{id}/email.html"),
        _ => format!("{id}/{part}"),
    }
}

fn describe_error(id: &str, part: &str, e: &minijinja::Error) -> String {
    let detail = e.detail().map(str::to_string).unwrap_or_else(|| e.kind().to_string());
    match e.line() {
        Some(line) => format!("template `{id}`, {part} line {line}: {detail}"),
        None => format!("template `{id}`, {part}: {detail}"),
    }
}

fn known(name: &str, kind: Kind) -> bool {
    let (top, field) = match name.split_once('.') {
        Some((top, field)) => (top, Some(field)),
        None => (name, None),
    };
    let extra: &[(&str, &[&str])] = if kind == Kind::Clearing { CLEARING_PARAMETERS } else { &[] };
    PARAMETERS.iter().chain(extra).any(|(t, fields)| *t == top && field.is_none_or(|f| fields.contains(&f)))
}

fn why_unknown(name: &str, kind: Kind) -> String {
    let top = name.split('.').next().unwrap_or(name);
    if kind == Kind::Notification && CLEARING_PARAMETERS.iter().any(|(t, _)| *t == top) {
        return "which only a clearing message has".into();
    }
    match PARAMETERS.iter().chain(CLEARING_PARAMETERS).find(|(t, _)| *t == top) {
        Some((_, fields)) => format!("which is not a parameter (`{top}` has: {})", fields.join(", ")),
        None => {
            let tops: Vec<&str> = PARAMETERS.iter().map(|(t, _)| *t).collect();
            format!("which is not a parameter (known: {})", tops.join(", "))
        }
    }
}

/// A subject line never carries a line break: header injection and broken mail both start there.
fn one_line(text: &str) -> String {
    let spaced: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The GSM 03.38 basic alphabet; anything else needs UCS-2 (70 characters a segment).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the GSM extension table, which take two septets each.
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Measures an SMS body, cutting it to `max` characters (marker included) if longer.
pub fn measure_sms(body: &str, max: usize) -> Sms {
    let body = body.trim();
    let length = body.chars().count();
    let (body, truncated) = if length > max {
        let keep: String = body.chars().take(max.saturating_sub(SMS_CUT_MARKER.chars().count())).collect();
        (format!("{}{SMS_CUT_MARKER}", keep.trim_end()), true)
    } else {
        (body.to_string(), false)
    };
    let gsm = body.chars().all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENDED.contains(c));
    let (units, single, multi, encoding) = if gsm {
        let septets: usize = body.chars().map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 }).sum();
        (septets, 160, 153, "gsm7")
    } else {
        (body.encode_utf16().count(), 70, 67, "ucs2")
    };
    let segments = if units <= single { 1 } else { units.div_ceil(multi) } as u32;
    Sms { length: body.chars().count(), body, segments, encoding: encoding.into(), truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(subject: &str, email: &str, sms: &str) -> TemplateDef {
        TemplateDef {
            id: "t".into(),
            unit: "default".into(),
            subject: subject.into(),
            email: Some(email.into()),
            sms: Some(sms.into()),
            sms_max: 40,
            at: Location::default(),
        }
    }

    #[test]
    fn values_are_escaped_in_email_only_and_subjects_stay_on_one_line() {
        let (t, problems) =
            Templates::compile(vec![def("Missed: {{ caller.name }}", "<p>{{ caller.name }}</p>", "{{ caller.name }}")]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut p = Params::sample(Kind::Notification, Timestamp(0));
        p.caller.name = "<b>Eve</b>\r\nBcc: x@evil".into();
        let r = t.render("t", &p).unwrap();
        assert_eq!(r.subject, "Missed: <b>Eve</b> Bcc: x@evil");
        assert_eq!(r.email.unwrap(), "<p>&lt;b&gt;Eve&lt;&#x2f;b&gt;\r\nBcc: x@evil</p>");
        assert!(r.sms.unwrap().body.starts_with("<b>Eve</b>"));
    }

    #[test]
    fn unknown_parameters_and_clearing_only_ones_are_named() {
        let (t, _) = Templates::compile(vec![def("{{ caller.nmae }}", "{{ answered_by.name }}", "{{ colour }}")]);
        let found = t.unknown_parameters("t", Kind::Notification);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("`caller.nmae`") && found[0].contains("name, number, sip"), "{found:?}");
        assert!(found[1].contains("only a clearing message"), "{found:?}");
        assert!(t.unknown_parameters("t", Kind::Clearing).len() == 2);
    }

    #[test]
    fn syntax_errors_name_the_part_and_line() {
        let (_, problems) = Templates::compile(vec![def("ok", "<p>\n{{ caller.name </p>", "x")]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.starts_with("template `t`, email line 2:"), "{problems:?}");
    }

    #[test]
    fn sms_segments_follow_the_alphabet_and_long_bodies_are_cut() {
        assert_eq!(measure_sms(&"a".repeat(160), 500).segments, 1);
        assert_eq!(measure_sms(&"a".repeat(161), 500).segments, 2);
        let ru = measure_sms(&"я".repeat(71), 500);
        assert_eq!((ru.encoding.as_str(), ru.segments), ("ucs2", 2));
        assert_eq!(measure_sms("{}", 500).segments, 1);
        let cut = measure_sms(&"word ".repeat(20), 40);
        assert!(cut.truncated && cut.length <= 40 && cut.body.ends_with(SMS_CUT_MARKER), "{cut:?}");
    }

    #[test]
    fn times_show_in_the_recipients_zone_and_durations_read_well() {
        let (t, _) = Templates::compile(vec![def(
            "{{ now | datetime('%H:%M %Z') }} / {{ now | datetime('%H:%M', 'UTC') }}",
            "{{ conversation.waited | duration }}",
            "x",
        )]);
        let mut p = Params::sample(Kind::Notification, Timestamp::parse_rfc3339("2026-07-01T12:00:00Z").unwrap());
        p.conversation.waited = 3725.0;
        let r = t.render("t", &p).unwrap();
        assert_eq!(r.subject, "14:00 CEST / 12:00");
        assert_eq!(r.email.unwrap(), "1h 2m");
    }
}
