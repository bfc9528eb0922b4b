//! Standby duty end to end, over real sockets: email to a real SMTP server (aiosmtpd writing a
//! Maildir, read back here) and SMS to a local server that speaks the Twilio API. The engine
//! runs on a virtual clock; delivery runs on real time, and the tests wait for what arrives with
//! a deadline.

use crate::common;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use common::smtp::{free_port, maildir, Mail, Smtp};
use common::{fixture, Scratch};
use rota::conversation::{NewConversation, Party};
use rota::delivery::{EmailConfig, NotifyConfig, Senders, SmsConfig, Tls, WebhookChannelConfig};
use rota::notification::{DeliveryStatus, Filter};
use rota::runtime::{Builder, Handle};
use rota::store::SqliteStore;
use rota::time::{Duration, Timestamp};
use rota::{Input, VirtualClock};
use tokio::sync::watch;

// ------------------------------------------------------------------ a Twilio-speaking SMS server

#[derive(Clone, Debug)]
struct Sms {
    to: String,
    from: String,
    body: String,
    auth: String,
    at: Instant,
}

/// Per word: the statuses to answer with, and a Retry-After in seconds.
type Script = BTreeMap<String, VecDeque<(u16, Option<u64>)>>;

#[derive(Clone, Default)]
struct Twilio {
    received: Arc<Mutex<Vec<Sms>>>,
    /// Answers to give, per word found in the body (a conversation id): status and Retry-After.
    script: Arc<Mutex<Script>>,
}

async fn twilio_messages(
    State(t): State<Twilio>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let form = form_fields(&body);
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let sms = Sms {
        to: field("To"),
        from: field("From"),
        body: field("Body"),
        auth: headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string(),
        at: Instant::now(),
    };
    let n = {
        let mut received = t.received.lock().unwrap();
        received.push(sms.clone());
        received.len()
    };
    let answer = t
        .script
        .lock()
        .unwrap()
        .iter_mut()
        .find(|(k, _)| sms.body.contains(k.as_str()))
        .and_then(|(_, q)| q.pop_front());
    match answer {
        Some((status, retry_after)) if status != 201 => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                format!(r#"{{"code": 20001, "message": "scripted {status}", "status": {status}}}"#),
            )
                .into_response();
            if let Some(s) = retry_after {
                response.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
            }
            response
        }
        _ => (
            StatusCode::CREATED,
            format!(r#"{{"sid": "SM{n:04}", "account_sid": "{sid}", "status": "queued", "to": "{}"}}"#, sms.to),
        )
            .into_response(),
    }
}

/// `application/x-www-form-urlencoded`, decoded by hand (percent escapes and `+`).
fn form_fields(body: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

async fn start_twilio() -> (Twilio, u16) {
    let twilio = Twilio::default();
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio_messages))
        .with_state(twilio.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (twilio, port)
}

fn twilio_config(port: u16) -> SmsConfig {
    SmsConfig::Twilio {
        url: format!("http://127.0.0.1:{port}"),
        account_sid: "AC0123456789".into(),
        auth_token: "secret-token".into(),
        from: "+4700000000".into(),
        timeout_ms: Some(2000),
        ca_file: None,
    }
}

// ------------------------------------------------------------------ the rota side

struct Rota {
    handle: Arc<Handle>,
    stop: watch::Sender<bool>,
    deliverer: Option<std::thread::JoinHandle<()>>,
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn start_rota(
    scripts: &Path,
    db: &Path,
    email: Option<EmailConfig>,
    sms: Option<SmsConfig>,
    webhook: Option<WebhookChannelConfig>,
    notify: NotifyConfig,
) -> Rota {
    let clock = VirtualClock::starting_at(at("2026-11-23T13:00:00Z"));
    let handle = Builder::new(scripts).clock(clock).store(SqliteStore::open(db).unwrap()).start().unwrap();
    let handle = Arc::new(handle);
    let senders = Senders::new(email.as_ref(), sms.as_ref(), webhook.as_ref(), &notify).unwrap();
    let (stop, stopped) = watch::channel(false);
    let deliverer =
        rota::delivery::spawn(handle.take_notifications().unwrap(), senders, notify, handle.clone(), stopped).unwrap();
    Rota { handle, stop, deliverer: Some(deliverer) }
}

impl Rota {
    async fn submit(&self, input: Input) {
        self.handle.submit(input).await.unwrap_or_else(|e| panic!("{e}"));
    }

    async fn ready(&self, agent: &str) {
        self.submit(Input::SignIn { agent: agent.into() }).await;
        self.submit(Input::SetStatus { agent: agent.into(), status: "callcenter".into() }).await;
    }

    fn entries(&self, filter: Filter) -> Vec<rota::notification::LogEntry> {
        self.handle.notification_log().unwrap().lock().unwrap().list(&filter).unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(d) = self.deliverer.take() {
            let _ = tokio::task::spawn_blocking(move || d.join()).await;
        }
        let _ = self.handle.close().await;
    }
}

fn notify_config(dir: &Path) -> NotifyConfig {
    let mut config = NotifyConfig::default();
    config.first_retry_ms = 100;
    config.max_retry_ms = 400;
    config.outbox_dir = dir.join("outbox");
    config
}

/// Waits for `done` to hold, checking again whenever the test's own runtime has run a little.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

fn call(id: &str, queue: &str, caller: &str, number: &str) -> Input {
    Input::Arrive(Box::new(NewConversation {
        id: id.into(),
        queue: queue.into(),
        caller: Party { name: (!caller.is_empty()).then(|| caller.into()), number: Some(number.into()), sip: None },
        service: Party { name: Some("Service desk".into()), ..Party::default() },
        ..NewConversation::default()
    }))
}

// ------------------------------------------------------------------ the tests

/// The LUCS story: Pia misses the call; Sofie, on duty this week, gets an email and an SMS; Pia
/// answers on the second ring; Sofie gets the clearing message; Pia gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lucs_story_arrives_by_email_and_sms() {
    let scratch = Scratch::new(&[]);
    let smtp = Smtp::start(&scratch.0.join("maildir"), free_port());
    let (twilio, port) = start_twilio().await;
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/standby");
    let rota = start_rota(
        &scripts,
        &scratch.0.join("rota.db"),
        Some(smtp.config()),
        Some(twilio_config(port)),
        None,
        notify_config(&scratch.0),
    );
    rota.ready("pia").await;

    rota.submit(call("call-1", "service_desk", "Kari Nordmann", "+4791234567")).await;
    rota.handle.advance(Duration::from_secs(20)).await.unwrap(); // the offer times out
    rota.handle.advance(Duration::from_secs(10)).await.unwrap(); // Pia's no-answer delay ends; it rings again
    rota.submit(Input::Accept { conversation: "call-1".into(), agent: Some("pia".into()) }).await;

    until("two emails and two SMS", || smtp.mails().len() == 2 && twilio.received.lock().unwrap().len() == 2).await;
    let mails = smtp.mails();
    let (missed, taken) = (&mails[0], &mails[1]);
    assert_eq!(missed.header("subject"), "Missed call from Kari Nordmann on Service desk");
    assert_eq!(taken.header("subject"), "Taken over: call from Kari Nordmann");
    for mail in &mails {
        assert_eq!(mail.header("to"), "sofie@example.com", "only the duty agent is mailed");
        assert_eq!(mail.header("from"), "\"Rota Standby\" <rota@example.com>");
        assert_eq!(mail.header("mime-version"), "1.0");
        assert!(mail.header("content-type").starts_with("multipart/alternative"), "{}", mail.header("content-type"));
        assert!(mail.body.contains("Content-Type: text/plain") && mail.body.contains("Content-Type: text/html"));
        let id = mail.header("message-id");
        assert!(id.starts_with("<rota.") && id.ends_with("@example.com>"), "stable Message-ID, got {id}");
    }
    assert!(missed.body.contains("Hello Sofie Lund") && missed.body.contains("+4791234567"), "{}", missed.body);
    // 13:00:20 UTC is 14:00 in Oslo, the recipient's zone.
    assert!(missed.body.contains("at 14:00 and has waited 20s"), "{}", missed.body);
    assert!(missed.body.contains("pia did not answer in time"), "{}", missed.body);
    assert!(taken.body.contains("Pia Hansen answered the call from Kari Nordmann"), "{}", taken.body);

    let sms = twilio.received.lock().unwrap().clone();
    assert!(sms.iter().all(|s| s.to == "+4790000003" && s.from == "+4700000000"), "{sms:?}");
    // Basic auth with the account sid and token: base64("AC0123456789:secret-token").
    assert!(sms.iter().all(|s| s.auth == "Basic QUMwMTIzNDU2Nzg5OnNlY3JldC10b2tlbg=="), "{sms:?}");
    let bodies: Vec<&str> = sms.iter().map(|s| s.body.as_str()).collect();
    assert!(bodies.contains(&"Missed call from Kari Nordmann (+4791234567) on Service desk at 14:00"), "{bodies:?}");
    assert!(bodies.contains(&"Pia Hansen took the call from Kari Nordmann. Nothing to do."), "{bodies:?}");

    until("four notifications marked sent", || {
        rota.entries(Filter { status: Some("sent".into()), ..Filter::default() }).len() == 4
    })
    .await;
    let to_pia = rota.entries(Filter { recipient: Some("pia".into()), ..Filter::default() });
    assert!(to_pia.is_empty(), "the agent who answered gets nothing: {to_pia:?}");
    let sms_sent = rota.entries(Filter { conversation: Some("call-1".into()), ..Filter::default() });
    assert!(
        sms_sent
            .iter()
            .filter(|e| e.notification.channel == rota::rules::DeliveryChannel::Sms)
            .all(|e| e.provider_id.as_deref().is_some_and(|p| p.starts_with("SM"))),
        "the provider's message id is stored"
    );

    // A repeated event does not send the same message twice.
    rota.submit(Input::Raise { conversation: "call-1".into(), event: "missed".into() }).await;
    assert_eq!(rota.entries(Filter::default()).len(), 4);
    rota.stop().await;
}

const RETRY_SCRIPTS: &[(&str, &str)] = &[(
    "rules.lua",
    r#"
agents.define { id = "ola", name = "Ola", email = "ola@example.com", phone = "+4711111111" }
agents.define { id = "duty", name = "Duty", email = "duty@example.com", phone = "+4722222222", time_zone = "UTC" }
queues.define { id = "q", agents = { "ola" }, policy = "longest_idle", options = { timeout = "10s" }, standby = { "sms_missed", "sms_failed" } }

templates.define { id = "missed", subject = "Missed {{ conversation.id }}", sms = "Missed {{ conversation.id }} from {{ caller.number }}" }
templates.define { id = "failed", subject = "SMS about {{ conversation.id }} failed: {{ event.reason }}",
                   email = "<p>The {{ event.channel }} to {{ recipient.phone }} failed.</p>" }

standby.define { id = "sms_missed", on = "abandoned", notify = { agents = { "duty" } }, channels = "sms", template = "missed" }
standby.define { id = "sms_failed", on = "delivery_failed", notify = "recipient", channels = "email", template = "failed" }
"#,
)];

/// Three callers hang up; the duty agent gets an SMS about each, and the provider answers:
/// 429 then 201 (Retry-After honoured); 500 until the attempts run out; a permanent 400. The two
/// dead SMS raise `delivery_failed`, whose rule emails the same person instead; a dead SMS put
/// back by hand goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_retries_dead_letters_and_falls_back_to_email() {
    let scratch = Scratch::new(RETRY_SCRIPTS);
    let smtp = Smtp::start(&scratch.0.join("maildir"), free_port());
    let (twilio, port) = start_twilio().await;
    {
        let mut script = twilio.script.lock().unwrap();
        script.insert("c1 ".into(), VecDeque::from([(429, Some(1))]));
        script.insert("c2 ".into(), VecDeque::from([(500, None), (503, None), (500, None)]));
        script.insert("c3 ".into(), VecDeque::from([(400, None)]));
    }
    let mut notify = notify_config(&scratch.0);
    notify.max_attempts = 3;
    let rota = start_rota(
        &scratch.0,
        &scratch.0.join("rota.db"),
        Some(smtp.config()),
        Some(twilio_config(port)),
        None,
        notify,
    );
    rota.ready("ola").await;
    for c in ["c1", "c2", "c3"] {
        rota.submit(call(c, "q", "", "+4799999999")).await;
        rota.submit(Input::Abandon { conversation: c.into() }).await;
    }

    until("c1 sent, c2 and c3 dead", || {
        let sent =
            rota.entries(Filter { status: Some("sent".into()), recipient: Some("duty".into()), ..Filter::default() });
        let dead = rota.entries(Filter { status: Some("dead".into()), ..Filter::default() });
        sent.iter().any(|e| e.notification.conversation == "c1") && dead.len() == 2
    })
    .await;
    let sms = twilio.received.lock().unwrap().clone();
    let tries =
        |c: &str| sms.iter().filter(|s| s.body.starts_with(&format!("Missed {c} "))).cloned().collect::<Vec<_>>();
    let c1 = tries("c1");
    assert_eq!(c1.len(), 2, "429, then sent: {c1:?}");
    assert!(c1[1].at - c1[0].at >= StdDuration::from_millis(900), "Retry-After: 1 was honoured");
    assert_eq!(tries("c2").len(), 3, "three attempts, then dead");
    assert_eq!(tries("c3").len(), 1, "a 400 is permanent at once");

    let log = rota.handle.notification_log().unwrap();
    let dead = rota.entries(Filter { status: Some("dead".into()), ..Filter::default() });
    let c2 = dead.iter().find(|e| e.notification.conversation == "c2").unwrap();
    let (entry, attempts) = log.lock().unwrap().get(c2.notification.id).unwrap().unwrap();
    assert_eq!(entry.status, DeliveryStatus::Dead);
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "dead"]);
    assert!(attempts[0].detail.contains("500"), "{attempts:?}");

    // delivery_failed: the same person is emailed instead, once per dead SMS.
    until("two fallback emails", || smtp.mails().len() == 2).await;
    let mut subjects: Vec<String> = smtp.mails().iter().map(|m| m.header("subject").to_string()).collect();
    subjects.sort();
    assert!(subjects[0].starts_with("SMS about c2 failed: the provider answered 500"), "{subjects:?}");
    assert!(subjects[1].starts_with("SMS about c3 failed: the provider answered 400"), "{subjects:?}");
    assert!(smtp.mails().iter().all(|m| m.header("to") == "duty@example.com" && m.body.contains("+4722222222")));

    // Retried by hand, the dead c3 SMS goes out (the provider now accepts it).
    let c3 = dead.iter().find(|e| e.notification.conversation == "c3").unwrap().notification.id;
    assert_eq!(rota.handle.revive_notification(c3).unwrap(), Some(true));
    assert_eq!(rota.handle.revive_notification(c3).unwrap(), Some(false), "only a dead one can be revived");
    until("the revived SMS sent", || {
        log.lock().unwrap().get(c3).unwrap().is_some_and(|(e, _)| e.status == DeliveryStatus::Sent)
    })
    .await;
    assert_eq!(tries("c3").len(), 1, "the earlier snapshot");
    assert_eq!(twilio.received.lock().unwrap().iter().filter(|s| s.body.starts_with("Missed c3 ")).count(), 2);
    rota.stop().await;
}

const JSON_SCRIPTS: &[(&str, &str)] = &[(
    "rules.lua",
    r#"
agents.define { id = "ola", name = "Ola" }
agents.define { id = "duty", name = "Duty", phone = "+4722222222", time_zone = "UTC" }
agents.define { id = "boss", name = "Boss", phone = "+4733333333", time_zone = "UTC" }
queues.define { id = "q", agents = { "ola" }, policy = "longest_idle", standby = "left" }
templates.define { id = "left", subject = "{{ conversation.id }} left", sms = "{{ conversation.id }} left after {{ conversation.waited | duration }}" }
standby.define { id = "left", on = "abandoned", notify = { agents = { "duty", "boss" } }, channels = { "sms", "webhook" }, template = "left" }
"#,
)];

/// What the JSON SMS provider and the webhook receiver were sent: (headers, body).
type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A generic JSON SMS provider that answers 200 either way and says in the body whether it took
/// the message (it refuses the boss's number), and a webhook receiver.
async fn start_json_receivers() -> (u16, Seen, Seen) {
    let (sms, hook): (Seen, Seen) = Default::default();
    let (sms_seen, hook_seen) = (sms.clone(), hook.clone());
    let app = Router::new()
        .route(
            "/sms",
            post(move |headers: HeaderMap, body: String| async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let refused = v["to"] == "+4733333333";
                sms_seen.lock().unwrap().push((headers, body));
                let answer = if refused {
                    serde_json::json!({ "result": { "status": "rejected" }, "message": "number blocked" })
                } else {
                    serde_json::json!({ "result": { "status": "ok" }, "id": format!("m-{}", v["to"].as_str().unwrap()) })
                };
                axum::Json(answer)
            }),
        )
        .route(
            "/hook",
            post(move |headers: HeaderMap, body: String| async move {
                hook_seen.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, sms, hook)
}

/// The generic JSON SMS channel judges success from the body as well as the status; the
/// `webhook` channel posts each notification, signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_sms_is_judged_by_its_body_and_the_webhook_channel_posts_signed() {
    let scratch = Scratch::new(JSON_SCRIPTS);
    let (port, sms, hook) = start_json_receivers().await;
    let json_sms = SmsConfig::Json {
        url: format!("http://127.0.0.1:{port}/sms"),
        from: Some("Rota".into()),
        token: Some("sms-token".into()),
        success_path: Some("result.status".into()),
        success_value: Some(serde_json::json!("ok")),
        timeout_ms: Some(2000),
        ca_file: None,
    };
    let secret = "sixteen-chars-or-more";
    let mut webhook = WebhookChannelConfig::new(format!("http://127.0.0.1:{port}/hook"));
    webhook.secret = Some(secret.into());
    webhook.timeout_ms = Some(2000);
    let rota = start_rota(
        &scratch.0,
        &scratch.0.join("rota.db"),
        None,
        Some(json_sms),
        Some(webhook),
        notify_config(&scratch.0),
    );
    rota.ready("ola").await;
    rota.submit(call("c1", "q", "", "+4799999999")).await;
    rota.handle.advance(Duration::from_secs(4)).await.unwrap();
    rota.submit(Input::Abandon { conversation: "c1".into() }).await;

    until("the duty SMS sent, the boss SMS dead, both webhooks sent", || {
        let done = |status: &str| rota.entries(Filter { status: Some(status.into()), ..Filter::default() });
        done("sent").len() == 3 && done("dead").len() == 1
    })
    .await;
    let entries = rota.entries(Filter::default());
    let sms_to = |who: &str| {
        entries
            .iter()
            .find(|e| e.notification.recipient == who && e.notification.channel == rota::rules::DeliveryChannel::Sms)
    };
    let duty = sms_to("duty").unwrap();
    assert_eq!(duty.provider_id.as_deref(), Some("m-+4722222222"), "the provider's id from the body is stored");
    let boss = sms_to("boss").unwrap();
    assert_eq!(boss.attempts, 1, "a refusal in the body is permanent");
    assert!(
        boss.last_error.as_deref().unwrap().contains(r#"the provider answered "rejected" at `result.status`"#),
        "{boss:?}"
    );

    let sms: Vec<(HeaderMap, serde_json::Value)> =
        sms.lock().unwrap().iter().map(|(h, b)| (h.clone(), serde_json::from_str(b).unwrap())).collect();
    let (headers, body) = sms.iter().find(|(_, b)| b["to"] == "+4722222222").unwrap();
    assert_eq!(headers["authorization"], "Bearer sms-token");
    assert_eq!((body["from"].as_str(), body["body"].as_str()), (Some("Rota"), Some("c1 left after 4s")));

    let hook = hook.lock().unwrap().clone();
    assert_eq!(hook.len(), 2);
    for (headers, raw) in &hook {
        let body: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!((body["conversation"].as_str(), body["channel"].as_str()), (Some("c1"), Some("webhook")));
        assert_eq!(headers["x-rota-notification"].to_str().unwrap(), body["id"].to_string());
        let signature = headers["x-rota-signature"].to_str().unwrap();
        let t: i64 = signature.strip_prefix("t=").and_then(|s| s.split(',').next()).unwrap().parse().unwrap();
        assert_eq!(signature, rota::webhook::signature(secret, t, raw), "signed over the body as sent");
    }
    rota.stop().await;
}

/// Per-recipient limits: once a recipient has had `per_recipient_hour` messages by a channel,
/// more wait (logged as `limited` and counted) instead of going out or being dropped; other
/// recipients are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_put_off_the_excess_per_recipient_and_lose_nothing() {
    let scratch = Scratch::new(OUTAGE_SCRIPTS);
    scratch.write(&[(
        "more.lua",
        r#"agents.define { id = "boss", name = "Boss", email = "boss@example.com", time_zone = "UTC" }
standby.define { id = "boss_too", on = "abandoned", notify = { agents = { "boss" } }, channels = "email", template = "hung_up" }"#,
    )]);
    std::fs::write(
        scratch.0.join("rules.lua"),
        OUTAGE_SCRIPTS[0].1.replace(r#"standby = "hung_up""#, r#"standby = { "hung_up", "boss_too" }"#),
    )
    .unwrap();
    let mut notify = notify_config(&scratch.0);
    notify.per_recipient_hour = 2;
    let rota = start_rota(&scratch.0, &scratch.0.join("rota.db"), None, None, None, notify);
    for k in 1..=3 {
        let id = format!("c{k}");
        rota.submit(call(&id, "q", "", "+4799999999")).await;
        rota.submit(Input::Abandon { conversation: id }).await;
    }
    rota.submit(call("c4", "q", "", "+4799999999")).await;
    let started = Timestamp(chrono::Utc::now().timestamp_millis());
    rota.submit(Input::Abandon { conversation: "c4".into() }).await;

    let log = rota.handle.notification_log().unwrap();
    until("four sent, two put off for each recipient", || {
        let limited = log.lock().unwrap().counts().unwrap().into_iter().find(|(s, _)| s == "rate_limited");
        rota.entries(Filter { status: Some("sent".into()), ..Filter::default() }).len() == 4
            && limited.is_some_and(|(_, n)| n == 4)
    })
    .await;
    for who in ["duty", "boss"] {
        let mine = rota.entries(Filter { recipient: Some(who.into()), ..Filter::default() });
        assert_eq!(mine.len(), 4);
        let sent: Vec<_> = mine.iter().filter(|e| e.status == DeliveryStatus::Sent).collect();
        let waiting: Vec<_> = mine.iter().filter(|e| e.status == DeliveryStatus::Pending).collect();
        assert_eq!((sent.len(), waiting.len()), (2, 2), "{who}: {mine:?}");
        for e in waiting {
            assert_eq!(e.attempts, 0, "being put off is not a failed attempt");
            assert!(e.due.0 >= started.0 + 6 * 60_000 - 1000, "{who}: waits for room in the hour window: {e:?}");
            let (_, attempts) = log.lock().unwrap().get(e.notification.id).unwrap().unwrap();
            assert_eq!(attempts[0].outcome, "limited");
            assert!(attempts[0].detail.starts_with(&format!("rate limit for {who} reached")), "{attempts:?}");
        }
    }
    rota.stop().await;
}

/// An HTTPS server that speaks the Twilio API, with a certificate from a private CA made here
/// by `openssl`; it prints its port, then every request body it gets, a line each.
struct TlsTwilio {
    child: Child,
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

const TLS_TWILIO: &str = r#"
import http.server, json, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        print(body, flush=True)
        out = json.dumps({"sid": "SMtls", "status": "queued"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Makes a private CA and a certificate it signs for 127.0.0.1 in `dir` with `openssl`:
/// `ca.pem`, `leaf.pem` and `leaf.key`.
fn private_ca(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (.ci/run installs it)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Rota Test CA"],
        ]
        .concat(),
    );
    openssl(&[&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

impl TlsTwilio {
    /// Serves with a certificate from a private CA made in `dir`; returns the server and the
    /// CA's certificate file.
    fn start(dir: &Path) -> (TlsTwilio, PathBuf) {
        private_ca(dir);
        let mut child = Command::new("python3")
            .args(["-c", TLS_TWILIO])
            .arg(dir.join("leaf.pem"))
            .arg(dir.join("leaf.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let port = lines.next().expect("the port").unwrap().parse().unwrap();
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let noted = bodies.clone();
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| noted.lock().unwrap().push(l)));
        (TlsTwilio { child, port, bodies }, dir.join("ca.pem"))
    }
}

impl Drop for TlsTwilio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Outbound calls go over https. A provider whose certificate comes from a private CA is
/// refused until that CA is configured (`ca_file`); the SMS waits meanwhile, and goes out once
/// rota restarts with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_over_https_trusts_a_configured_private_ca_and_waits_until_then() {
    let scratch = Scratch::new(RETRY_SCRIPTS);
    let (server, ca) = TlsTwilio::start(&scratch.0);
    let https = |ca: Option<PathBuf>| {
        let mut config = twilio_config(0);
        if let SmsConfig::Twilio { url, ca_file, .. } = &mut config {
            *url = format!("https://127.0.0.1:{}", server.port);
            *ca_file = ca;
        }
        config
    };
    let db = scratch.0.join("rota.db");
    let rota = start_rota(&scratch.0, &db, None, Some(https(None)), None, notify_config(&scratch.0));
    rota.ready("ola").await;
    rota.submit(call("c1", "q", "", "+4799999999")).await;
    rota.submit(Input::Abandon { conversation: "c1".into() }).await;
    let log = rota.handle.notification_log().unwrap();
    until("a refused attempt", || {
        rota.entries(Filter::default()).first().is_some_and(|e| e.attempts >= 1 && e.status == DeliveryStatus::Pending)
    })
    .await;
    let id = rota.entries(Filter::default())[0].notification.id;
    let (_, attempts) = log.lock().unwrap().get(id).unwrap().unwrap();
    assert_eq!(attempts[0].outcome, "retry");
    assert!(attempts[0].detail.contains("invalid peer certificate: UnknownIssuer"), "{attempts:?}");
    assert!(server.bodies.lock().unwrap().is_empty(), "nothing reached the untrusted server");
    rota.stop().await;

    let rota = start_rota(&scratch.0, &db, None, Some(https(Some(ca))), None, notify_config(&scratch.0));
    until("the SMS sent over https", || {
        rota.entries(Filter { status: Some("sent".into()), ..Filter::default() }).len() == 1
    })
    .await;
    assert_eq!(rota.entries(Filter::default())[0].provider_id.as_deref(), Some("SMtls"));
    let bodies = server.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("To=%2B4722222222") && bodies[0].contains("Body=Missed+c1"), "{bodies:?}");
    rota.stop().await;
}

/// aiosmtpd twice, both asking for a login (`rota` / `s3cret`) and writing one Maildir: one
/// port upgrades with STARTTLS (and refuses anything before it), the other speaks TLS from the
/// first byte. Prints `ready` once both listen.
const TLS_SMTP: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
cert, key, maildir, starttls_port, tls_port = sys.argv[1:6]
def login(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"rota" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
common = dict(hostname="127.0.0.1", authenticator=login, auth_required=True)
starttls = Controller(Mailbox(maildir), port=int(starttls_port), tls_context=context, require_starttls=True, **common)
starttls.start()
# aiosmtpd does not count implicit TLS as TLS for auth_require_tls; the whole session is TLS.
implicit = Controller(Mailbox(maildir), port=int(tls_port), ssl_context=context, auth_require_tls=False, **common)
implicit.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// Email over STARTTLS and over TLS, with a login, to servers whose certificate comes from a
/// private CA (`ca_file`); a wrong password is a permanent failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_and_tls_with_a_login() {
    let scratch = Scratch::new(OUTAGE_SCRIPTS);
    private_ca(&scratch.0);
    let mail = scratch.0.join("maildir");
    let ports = [free_port(), free_port()];
    let mut child = Command::new("python3")
        .args(["-c", TLS_SMTP])
        .args([scratch.0.join("leaf.pem"), scratch.0.join("leaf.key"), mail.clone()])
        .args(ports.map(|p| p.to_string()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    assert_eq!(first.trim(), "ready", "aiosmtpd with TLS did not start");

    let cases = [
        ("c1", ports[0], Tls::Starttls, "s3cret"),
        ("c2", ports[1], Tls::Tls, "s3cret"),
        ("c3", ports[0], Tls::Starttls, "wrong"),
    ];
    for (conversation, port, tls, password) in cases {
        let mut email = EmailConfig::new("127.0.0.1", "Rota <rota@example.com>");
        email.port = Some(port);
        email.tls = tls;
        email.username = Some("rota".into());
        email.password = Some(password.into());
        email.pool = 1;
        email.timeout_ms = 5000;
        email.ca_file = Some(scratch.0.join("ca.pem"));
        let db = scratch.0.join(format!("{conversation}.db"));
        let rota = start_rota(&scratch.0, &db, Some(email), None, None, notify_config(&scratch.0));
        rota.submit(call(conversation, "q", "", "+4799999999")).await;
        rota.submit(Input::Abandon { conversation: conversation.into() }).await;
        until(&format!("{conversation} settled"), || {
            rota.entries(Filter::default()).first().is_some_and(|e| e.status != DeliveryStatus::Pending)
        })
        .await;
        let entry = rota.entries(Filter::default()).remove(0);
        if password == "wrong" {
            assert_eq!(
                (entry.status, entry.attempts),
                (DeliveryStatus::Dead, 1),
                "a refused login is permanent: {entry:?}"
            );
            assert!(entry.last_error.as_deref().unwrap().contains("535"), "{entry:?}");
        } else {
            assert_eq!(entry.status, DeliveryStatus::Sent, "{conversation} over {tls:?}: {entry:?}");
        }
        rota.stop().await;
    }
    let subjects: Vec<String> = maildir(&mail).iter().map(|m| m.header("subject").to_string()).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects.contains(&"c1 hung up".to_string()) && subjects.contains(&"c2 hung up".to_string()),
        "{subjects:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn lucs_example_prints_the_messages() {
    let timeline = rota::scenario::run_file(&fixture("../../examples/standby_duty.toml")).unwrap();
    let text = timeline.text();
    assert!(text.contains("call-1 notified sofie by email: Missed call from Kari Nordmann on Service desk"), "{text}");
    assert!(text.contains("call-1 cleared sofie by sms: Taken over: call from Kari Nordmann"), "{text}");
    assert!(!text.contains("notified pia") && !text.contains("cleared pia"), "{text}");
}

/// Without an SMTP server or SMS provider, messages are files in the outbox folder; the API
/// reads the log, previews templates, answers who is on duty and where a definition is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_by_default_and_the_standby_api() {
    let scratch = Scratch::new(&[]);
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/standby");
    let rota = start_rota(&scripts, &scratch.0.join("rota.db"), None, None, None, notify_config(&scratch.0));
    let (app, _closer) = rota::http::router(
        rota.handle.clone(),
        &rota::http::ApiConfig::with_tokens([rota::http::Token::new("t", ["*"])]),
    );
    let base = common::serve(app).await;
    let client = common::http_client();
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}")).bearer_auth("t");
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };

    rota.ready("pia").await;
    rota.submit(call("call-1", "service_desk", "Kari Nordmann", "+4791234567")).await;
    rota.handle.advance(Duration::from_secs(20)).await.unwrap();
    let outbox = scratch.0.join("outbox");
    let files =
        || std::fs::read_dir(&outbox).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
    until("an .eml and a .json file", || {
        files().iter().filter(|p| p.extension().is_none_or(|e| e != "partial")).count() == 2
    })
    .await;
    let eml = files().into_iter().find(|p| p.extension().is_some_and(|e| e == "eml")).unwrap();
    let eml = Mail::parse(&std::fs::read_to_string(eml).unwrap());
    assert_eq!(eml.header("subject"), "Missed call from Kari Nordmann on Service desk");
    assert_eq!(eml.header("to"), "sofie@example.com");
    let sms = files().into_iter().find(|p| p.extension().is_some_and(|e| e == "json")).unwrap();
    let sms: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(sms).unwrap()).unwrap();
    assert_eq!((sms["to"].as_str(), sms["segments"].as_u64()), (Some("+4790000003"), Some(1)));

    until("both marked sent", || rota.entries(Filter { status: Some("sent".into()), ..Filter::default() }).len() == 2)
        .await;
    let (status, list) = get("/v1/notifications?recipient=sofie&conversation=call-1").await;
    assert_eq!(status, 200);
    let list = list["notifications"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    let id = list[0]["id"].as_u64().unwrap();
    // Newest first, a page at a time: the first page names the second, the second is the last.
    let (_, first) = get("/v1/notifications?recipient=sofie&conversation=call-1&limit=1").await;
    assert_eq!(first["notifications"][0]["id"], list[0]["id"], "{first}");
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) =
        get(&format!("/v1/notifications?recipient=sofie&conversation=call-1&limit=1&cursor={cursor}")).await;
    assert_eq!(second["notifications"][0]["id"], list[1]["id"], "{second}");
    assert!(second["next_cursor"].is_null(), "{second}");
    let (status, one) = get(&format!("/v1/notifications/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["attempts_log"][0]["outcome"], "sent");
    assert!(one["attempts_log"][0]["detail"].as_str().unwrap().starts_with("written to"), "{one}");
    let retry = client.post(format!("{base}/v1/notifications/{id}/retry")).bearer_auth("t").send().await.unwrap();
    assert_eq!(retry.status().as_u16(), 409, "only a dead notification can be retried");
    assert_eq!(get("/v1/notifications?status=lost").await.0, 400);
    assert_eq!(get("/v1/notifications/999").await.0, 404);

    let (_, preview) = get("/v1/templates/call_taken/preview?kind=clearing").await;
    assert_eq!(preview["subject"], "Taken over: call from Kari Nordmann");
    assert!(preview["sms"]["body"].as_str().unwrap().starts_with("Primary Agent took the call"), "{preview}");
    let (_, preview) = get("/v1/templates/missed_call/preview?conversation=call-1&recipient=dan").await;
    assert!(preview["email"].as_str().unwrap().contains("Hello Dan Berg"), "{preview}");

    let (_, duty) = get("/v1/schedules/standby_duty/on_duty?at=2026-12-25T12:00:00Z").await;
    assert_eq!(
        (duty["on_duty"]["agents"][0].as_str(), duty["on_duty"]["source"].as_str()),
        (Some("sofie"), Some("override"))
    );
    let (_, duty) = get("/v1/schedules/standby_duty/on_duty?at=2026-11-30T09:00:00Z").await;
    assert_eq!(duty["on_duty"]["agents"][0], "dan");
    assert_eq!(get("/v1/schedules/standby_duty/on_duty?at=soon").await.0, 400);

    let (_, used) = get("/v1/where_used/missed_call").await;
    let users: Vec<&str> = used["used_by"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(users, ["email_failed", "missed_calls"]);
    let (_, used) = get("/v1/where_used/missed_calls").await;
    assert_eq!(used["used_by"][0]["kind"], "queue");

    let raised = client
        .post(format!("{base}/v1/conversations/call-1/events"))
        .bearer_auth("t")
        .json(&serde_json::json!({ "event": "vip" }))
        .send()
        .await
        .unwrap();
    assert_eq!(raised.status().as_u16(), 200);
    rota.stop().await;
}

const OUTAGE_SCRIPTS: &[(&str, &str)] = &[(
    "rules.lua",
    r#"
agents.define { id = "duty", name = "Duty", email = "duty@example.com", time_zone = "UTC" }
queues.define { id = "q", agents = { "duty" }, policy = "longest_idle", standby = "hung_up" }
templates.define { id = "hung_up", subject = "{{ conversation.id }} hung up", email = "<p>{{ conversation.id }} gave up.</p>" }
standby.define { id = "hung_up", on = "abandoned", notify = { agents = { "duty" } }, channels = "email", template = "hung_up" }
"#,
)];

/// The SMTP server goes down while callers keep hanging up, and `rota serve` is killed twice
/// during the outage and once more while it catches up. Once both are back, every caller's email
/// has arrived, and where one arrived twice (sent, then killed before the send was recorded)
/// both copies carry the same Message-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_and_kills_lose_no_email_and_resends_are_recognisable() {
    let scratch = Scratch::new(OUTAGE_SCRIPTS);
    let (port, maildir) = (free_port(), scratch.0.join("maildir"));
    let config = scratch.0.join("rota.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {db:?}\nscripts = {scripts:?}\n[[tokens]]\ntoken = \"t\"\nunits = [\"*\"]\n\
             [email]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Rota <rota@example.com>\"\ntimeout_ms = 1000\n\
             [notify]\nfirst_retry_ms = 50\nmax_retry_ms = 300\nmax_attempts = 10000\n",
            db = scratch.0.join("rota.db").display().to_string(),
            scripts = scratch.0.display().to_string(),
        ),
    )
    .unwrap();
    let client = common::http_client();
    let hang_up = |base: String, id: String| {
        let client = client.clone();
        async move {
            let body = serde_json::json!({ "id": id, "queue": "q" });
            let created = client.post(format!("{base}/v1/conversations")).bearer_auth("t").json(&body).send().await;
            assert_eq!(created.unwrap().status().as_u16(), 201, "{id} created");
            let url = format!("{base}/v1/conversations/{id}/abandon");
            let abandoned = client.post(url).bearer_auth("t").send().await.unwrap();
            assert_eq!(abandoned.status().as_u16(), 200, "{id} abandoned");
        }
    };
    let notifications = |base: String| {
        let client = client.clone();
        async move {
            let url = format!("{base}/v1/notifications?limit=1000");
            let v: serde_json::Value = client.get(url).bearer_auth("t").send().await.unwrap().json().await.unwrap();
            v["notifications"].as_array().unwrap().clone()
        }
    };
    let tried_and_failed = |list: &[serde_json::Value], id: &str| {
        list.iter().any(|n| n["conversation"] == id && n["status"] == "pending" && n["attempts"].as_u64() >= Some(1))
    };
    let kill = |mut server: common::Server| {
        server.child.kill().unwrap();
        server.child.wait().unwrap();
    };

    // Up: the first three arrive.
    let smtp = Smtp::start(&maildir, port);
    let server = common::spawn(&config);
    for k in 1..=3 {
        hang_up(server.base.clone(), format!("c{k}")).await;
    }
    until("the first three emails", || smtp.mails().len() == 3).await;

    // The mail server goes down; six more callers hang up, their emails fail, and rota is killed.
    drop(smtp);
    for k in 4..=9 {
        hang_up(server.base.clone(), format!("c{k}")).await;
    }
    let mut list = Vec::new();
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while !tried_and_failed(&list, "c9") {
        assert!(Instant::now() < deadline, "c9's email was never tried: {list:?}");
        list = notifications(server.base.clone()).await;
    }
    kill(server);

    // Restarted during the outage: three more, then killed again.
    let server = common::spawn(&config);
    for k in 10..=12 {
        hang_up(server.base.clone(), format!("c{k}")).await;
    }
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while !tried_and_failed(&list, "c12") {
        assert!(Instant::now() < deadline, "c12's email was never tried: {list:?}");
        list = notifications(server.base.clone()).await;
    }
    kill(server);

    // The mail server is back; rota is killed again while it catches up.
    let smtp = Smtp::start(&maildir, port);
    let server = common::spawn(&config);
    for k in 13..=16 {
        hang_up(server.base.clone(), format!("c{k}")).await;
    }
    until("some of the backlog delivered", || smtp.mails().len() > 3).await;
    kill(server);

    let server = common::spawn(&config);
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        let list = notifications(server.base.clone()).await;
        if list.len() == 16 && list.iter().all(|n| n["status"] == "sent") {
            break;
        }
        assert!(Instant::now() < deadline, "not all sent: {list:?}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mail in smtp.mails() {
        let subject = mail.header("subject");
        let conversation = subject.strip_suffix(" hung up").unwrap_or_else(|| panic!("unexpected mail: {subject}"));
        ids.entry(conversation.to_string()).or_default().push(mail.header("message-id").to_string());
    }
    assert_eq!(ids.len(), 16, "one caller's email is missing: {ids:?}");
    for (conversation, copies) in &ids {
        assert!(copies.iter().all(|id| id == &copies[0]), "{conversation} arrived as different messages: {copies:?}");
    }
    kill(server);
}

const UNMAKEABLE: &[(&str, &str)] = &[(
    "rules.lua",
    r#"
agents.define { id = "duty", name = "Duty", email = "duty@example.com", phone = "+4790000000", time_zone = "UTC" }
agents.define { id = "nomail", name = "No Mail", time_zone = "UTC" }
queues.define { id = "q", agents = { "duty" }, policy = "longest_idle", standby = { "hung_up", "failed" } }
templates.define { id = "hung_up", subject = "{{ conversation.id }} hung up",
                   email = "{% if caller.name == 'Boom' %}{{ 1 / 0 }}{% endif %}<p>Call back.</p>" }
templates.define { id = "failed", subject = "{{ conversation.id }}: {{ event.reason }}", sms = "{{ event.reason }}" }
-- Whom to tell is decided at run time, so the missing address cannot be seen at load.
standby.define { id = "hung_up", on = "abandoned", channels = "email", template = "hung_up",
                 notify = function(event) return { "duty", "nomail" } end }
standby.define { id = "failed", on = "delivery_failed", notify = { agents = { "duty" } }, channels = "sms",
                 template = "failed" }
"#,
)];

/// A message that cannot be made (no address for its channel, a template that fails on this
/// conversation's data) is not dropped: it is a dead notification with its reason, it raises
/// `delivery_failed` (here: an SMS to the person on duty), and the server counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_made_is_dead_counted_and_raises_delivery_failed() {
    let scratch = Scratch::new(UNMAKEABLE);
    let (twilio, port) = start_twilio().await;
    let rota = start_rota(
        &scratch.0,
        &scratch.0.join("rota.db"),
        None,
        Some(twilio_config(port)),
        None,
        notify_config(&scratch.0),
    );
    rota.submit(call("c1", "q", "Kari", "+4711111111")).await;
    rota.submit(Input::Abandon { conversation: "c1".into() }).await;
    rota.submit(call("c2", "q", "Boom", "+4722222222")).await;
    rota.submit(Input::Abandon { conversation: "c2".into() }).await;

    let dead = rota.entries(Filter { status: Some("dead".into()), ..Filter::default() });
    let why: Vec<(String, String, String)> = dead
        .iter()
        .map(|e| (e.notification.conversation.clone(), e.notification.recipient.clone(), e.last_error.clone().unwrap()))
        .collect();
    assert!(why.contains(&("c1".into(), "nomail".into(), "agent `nomail` has no email address".into())), "{why:?}");
    assert!(why.iter().any(|(c, to, e)| c == "c2" && to == "duty" && e.contains("hung_up")), "{why:?}");
    assert_eq!(dead.len(), 3, "c1 to nomail, c2 to duty and to nomail: {why:?}");
    // Each raised delivery_failed: the duty agent hears of it by SMS, once per conversation.
    until("an SMS about each conversation's dead emails", || twilio.received.lock().unwrap().len() == 2).await;
    let bodies: Vec<String> = twilio.received.lock().unwrap().iter().map(|s| s.body.clone()).collect();
    assert!(bodies.iter().any(|b| b.contains("has no email address")), "{bodies:?}");
    let metrics = rota.handle.read(|e| e.metrics().undeliverable).await.unwrap();
    assert_eq!(metrics, 3);
    rota.stop().await;
}

/// A caller name of 1,200 letters and no space still makes an email every SMTP server takes:
/// the subject is folded as encoded words, every line stays under 998 characters, and the
/// message is MIME with a plain-text part beside the HTML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_caller_name_is_folded_and_delivered() {
    let scratch = Scratch::new(&[(
        "rules.lua",
        r#"
agents.define { id = "duty", name = "Duty", email = "duty@example.com", time_zone = "UTC" }
queues.define { id = "q", agents = { "duty" }, policy = "longest_idle", standby = "hung_up" }
templates.define { id = "hung_up", subject = "Missed: {{ caller.name }}", email = "<p>{{ caller.name }} & co hung up.</p>" }
standby.define { id = "hung_up", on = "abandoned", notify = { agents = { "duty" } }, channels = "email", template = "hung_up" }
"#,
    )]);
    let smtp = Smtp::start(&scratch.0.join("maildir"), free_port());
    let rota =
        start_rota(&scratch.0, &scratch.0.join("rota.db"), Some(smtp.config()), None, None, notify_config(&scratch.0));
    let name = "A".repeat(1200);
    rota.submit(call("c1", "q", &name, "+4711111111")).await;
    rota.submit(Input::Abandon { conversation: "c1".into() }).await;
    until("the email", || smtp.mails().len() == 1).await;
    let raw = std::fs::read_dir(smtp.maildir.join("new")).unwrap().next().unwrap().unwrap().path();
    let raw = std::fs::read_to_string(raw).unwrap();
    assert!(raw.lines().all(|l| l.len() <= 998), "a line longer than SMTP allows");
    let mail = &smtp.mails()[0];
    let subject: String = mail
        .header("subject")
        .split_whitespace()
        .map(|word| {
            let b64 =
                word.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?=")).unwrap_or_else(|| panic!("{word}"));
            use base64::Engine;
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(subject, format!("Missed: {name}"));
    assert_eq!(mail.header("mime-version"), "1.0");
    assert!(mail.body.contains(&format!("{name} & co hung up.")), "the plain-text part, unescaped");
    rota.stop().await;
}

/// An SMS the provider accepted is recorded as sent at once, even while the email of the same
/// alert hangs on a slow mail server; so `rota serve` killed then, and started again, does not
/// send that SMS a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_is_recorded_as_it_is_sent_so_a_crash_repeats_no_accepted_sms() {
    let scratch = Scratch::new(&[(
        "rules.lua",
        r#"
agents.define { id = "duty", name = "Duty", email = "duty@example.com", phone = "+4790000000", time_zone = "UTC" }
queues.define { id = "q", agents = { "duty" }, policy = "longest_idle", standby = "hung_up" }
templates.define { id = "hung_up", subject = "{{ conversation.id }} hung up", email = "<p>Call back.</p>", sms = "{{ conversation.id }} hung up" }
standby.define { id = "hung_up", on = "abandoned", notify = { agents = { "duty" } }, channels = { "email", "sms" }, template = "hung_up" }
"#,
    )]);
    // A mail server that takes the connection and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let (twilio, twilio_port) = start_twilio().await;
    let config = scratch.0.join("rota.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {db:?}\nscripts = {scripts:?}\n[[tokens]]\ntoken = \"t\"\nunits = [\"*\"]\n\
             [email]\nhost = \"127.0.0.1\"\nport = {silent_port}\ntls = \"none\"\nfrom = \"Rota <rota@example.com>\"\ntimeout_ms = 60000\n\
             [sms]\nprovider = \"twilio\"\nurl = \"http://127.0.0.1:{twilio_port}\"\naccount_sid = \"AC0123456789\"\n\
             auth_token = \"secret-token\"\nfrom = \"+4700000000\"\n",
            db = scratch.0.join("rota.db").display().to_string(),
            scripts = scratch.0.display().to_string(),
        ),
    )
    .unwrap();
    let client = common::http_client();
    let sms_status = |base: String| {
        let client = client.clone();
        async move {
            let url = format!("{base}/v1/notifications?limit=10");
            let v: serde_json::Value = client.get(url).bearer_auth("t").send().await.unwrap().json().await.unwrap();
            let list = v["notifications"].as_array().unwrap().clone();
            list.iter().find(|n| n["channel"] == "sms").map(|n| n["status"].as_str().unwrap().to_string())
        }
    };
    let mut server = common::spawn(&config);
    let base = server.base.clone();
    let created = serde_json::json!({ "id": "c1", "queue": "q" });
    for (path, body) in [("/v1/conversations", created), ("/v1/conversations/c1/abandon", serde_json::json!({}))] {
        let res = client.post(format!("{base}{path}")).bearer_auth("t").json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.text().await.unwrap());
    }
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while sms_status(base.clone()).await.as_deref() != Some("sent") {
        assert!(Instant::now() < deadline, "the SMS is recorded as sent while the email still hangs");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(twilio.received.lock().unwrap().len(), 1);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let mut server = common::spawn(&config);
    assert_eq!(sms_status(server.base.clone()).await.as_deref(), Some("sent"));
    // What the restarted deliverer takes up is the pending email; the SMS is done.
    assert_eq!(twilio.received.lock().unwrap().len(), 1, "the accepted SMS was not sent again");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
