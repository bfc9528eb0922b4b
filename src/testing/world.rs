//! The world a `rota test` case acts on: a fresh engine on a virtual clock, every update kept,
//! and the messages standby rules make captured instead of sent.

use std::sync::Arc;

use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::VirtualClock;
use crate::conversation::AttemptOutcome;
use crate::engine::{Engine, EngineConfig};
use crate::error::LoadError;
use crate::input::Input;
use crate::scenario::TimelineEntry;
use crate::script::testkit::World;
use crate::script::Sources;
use crate::time::{Duration, Timestamp};
use crate::update::{Stamped, Update};

/// Where every case's clock starts unless it sets one: Monday 2026-01-05 09:00 UTC.
pub const START: Timestamp = Timestamp(1_767_603_600_000);

pub struct EngineWorld {
    engine: Engine,
    clock: VirtualClock,
    updates: Vec<Stamped>,
    /// Whether an input has been handled: until then the clock may still be set back.
    touched: bool,
    arrivals: usize,
}

impl EngineWorld {
    pub fn new(config: EngineConfig, sources: Sources) -> Result<EngineWorld, LoadError> {
        let clock = VirtualClock::starting_at(START);
        let engine = Engine::from_sources(config, sources, Arc::new(clock.clone()), Vec::new())?;
        Ok(EngineWorld { engine, clock, updates: Vec::new(), touched: false, arrivals: 0 })
    }

    fn input(&mut self, input: Input) -> Result<(), String> {
        self.touched = true;
        let updates = self.engine.handle(input).map_err(|e| e.to_string())?;
        self.updates.extend(updates);
        Ok(())
    }

    fn set_time(&mut self, t: Timestamp) -> Result<(), String> {
        let now = self.engine.now();
        if t >= now {
            let fired = self.engine.advance_to(t);
            self.updates.extend(fired);
        } else if !self.touched {
            self.clock.set(t);
            // Nothing has happened yet, so no timer can be pending: the engine simply reads it.
            self.engine.fire_due();
        } else {
            return Err(format!("the clock only moves forward once something has happened: it is {now}, not {t}"));
        }
        Ok(())
    }

    fn conversation(&self, id: &str) -> Result<Value, String> {
        let c = self.engine.conversation(id).ok_or_else(|| format!("no conversation `{id}`"))?;
        let mut v = serde_json::to_value(crate::views::conversation(&self.engine, c)).unwrap_or_default();
        let offered: Vec<&str> =
            c.attempts.iter().filter(|a| a.outcome == AttemptOutcome::Pending).map(|a| a.agent.as_ref()).collect();
        v["offered"] = json!(offered);
        Ok(v)
    }

    fn notifications(&self) -> Value {
        let list: Vec<Value> = self
            .updates
            .iter()
            .filter_map(|s| match &s.update {
                Update::Notified { notification: n } => Some(json!({
                    "id": n.id,
                    "to": n.recipient,
                    "address": n.address,
                    "channel": n.channel.as_str(),
                    "kind": n.kind.as_str(),
                    "conversation": n.conversation,
                    "rule": n.rule,
                    "event": n.event,
                    "template": n.template,
                    "subject": n.message.subject,
                    "email": n.message.email,
                    "sms": n.message.sms.as_ref().map(|s| s.body.as_str()),
                    "undeliverable": n.undeliverable,
                    "at": s.at,
                })),
                _ => None,
            })
            .collect();
        Value::Array(list)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct At {
    at: String,
    zone: Option<String>,
}

/// `"2026-11-23 14:00"` in `zone` (UTC by default), or an RFC 3339 instant.
fn instant(text: &str, zone: Option<&str>) -> Result<Timestamp, String> {
    let tz: Tz = match zone {
        Some(z) => z.parse().map_err(|_| format!("unknown time zone `{z}`"))?,
        None => Tz::UTC,
    };
    Ok(crate::schedule::parse_instant(text, tz)?)
}

fn args<T: for<'de> Deserialize<'de>>(action: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{action}: {e}"))
}

fn str_arg(v: &Value, key: &str) -> Result<String, String> {
    v.get(key).and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("`{key}` (a string) is needed"))
}

impl World for EngineWorld {
    fn act(&mut self, action: &str, v: Value) -> Result<Value, String> {
        match action {
            "input" => {
                let input: Input = args("input", v)?;
                self.input(input)?;
                Ok(Value::Null)
            }
            "arrive" => {
                let mut v = v;
                if v.get("id").is_none() {
                    self.arrivals += 1;
                    v["id"] = json!(format!("c{}", self.arrivals));
                }
                let id = str_arg(&v, "id")?;
                self.input(Input::Arrive(Box::new(args("arrive", v)?)))?;
                Ok(json!(id))
            }
            "vacations" => {
                #[derive(Deserialize)]
                struct Vacations {
                    agent: String,
                    periods: Vec<(String, String)>,
                    zone: Option<String>,
                }
                let Vacations { agent, periods, zone } = args("vacations", v)?;
                // Local times are the agent's own (their `time_zone`), unless the test names one.
                let zone = zone.or_else(|| self.engine.agent(&agent).and_then(|a| a.def.time_zone.clone()));
                let instant = |t: &str| instant(t, zone.as_deref()).map(|t| t.to_rfc3339());
                let periods = periods
                    .iter()
                    .map(|(from, to)| Ok((instant(from)?, instant(to)?)))
                    .collect::<Result<_, String>>()?;
                self.input(Input::SetVacations { agent, periods })?;
                Ok(Value::Null)
            }
            "at" => {
                let at: At = args("at", v)?;
                self.set_time(instant(&at.at, at.zone.as_deref())?)?;
                Ok(json!(self.engine.now()))
            }
            "advance" => {
                let by = Duration::parse(&str_arg(&v, "by")?)?;
                self.set_time(self.engine.now() + by)?;
                Ok(json!(self.engine.now()))
            }
            "now" => Ok(json!(self.engine.now())),
            "conversation" => self.conversation(&str_arg(&v, "id")?),
            "agent" => {
                let id = str_arg(&v, "id")?;
                let a = self.engine.agent(&id).ok_or_else(|| format!("no agent `{id}`"))?;
                Ok(json!(crate::views::agent(&self.engine, a)))
            }
            "notifications" => Ok(self.notifications()),
            "tasks" => {
                let tasks = self.engine.open_tasks();
                Ok(json!(tasks.iter().map(|(i, t)| crate::views::task(&self.engine, i, t)).collect::<Vec<_>>()))
            }
            "workflows" => {
                let id = str_arg(&v, "conversation")?;
                let list: Vec<_> = self
                    .engine
                    .instances()
                    .filter(|i| *i.conversation == *id || crate::unit::external(&i.conversation) == id)
                    .map(|i| crate::views::instance(i, true))
                    .collect();
                Ok(json!(list))
            }
            "timeline" => {
                let lines: Vec<String> = self
                    .updates
                    .iter()
                    .map(|s| TimelineEntry::Update(s.clone()).text(START).replace("\n    | ", " | "))
                    .collect();
                Ok(json!(lines))
            }
            other => Err(format!("no test action `{other}`")),
        }
    }
}
