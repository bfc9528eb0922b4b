//! The standby-duty targets: templates rendered per second, and emails per second delivered
//! to a local SMTP server (aiosmtpd) with a connection pool, end to end through rota's outbox,
//! beside lettre alone with and without pooling on the same messages, in the same run.
//!
//! `cargo bench --bench notify` runs both; `-- templates` or `-- email` runs one.
//! `ROTA_BENCH_EMAILS=N` sets how many emails (default 2,000). Needs `python3 -m aiosmtpd`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use lettre::message::header::ContentType;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rota::conversation::NewConversation;
use rota::delivery::{EmailConfig, NotifyConfig, Senders, Tls};
use rota::runtime::Builder;
use rota::script::Limits;
use rota::store::SqliteStore;
use rota::template::{Kind, Params};
use rota::time::Timestamp;
use rota::{Input, VirtualClock};

/// Sends in flight at once, for every side of the email comparison.
const CONCURRENCY: usize = 8;
/// SMTP connections kept by the pooled sides.
const POOL: u32 = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    if wanted("templates") {
        templates();
    }
    if wanted("email") {
        let n = std::env::var("ROTA_BENCH_EMAILS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(email(n));
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The LUCS example's two templates, rendered with sample data: subject, HTML email body
/// (escaped) and SMS body (measured, cut at its maximum), each render all three.
fn templates() {
    let rules =
        rota::script::check(&root().join("examples/standby"), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let now = Timestamp::parse_rfc3339("2026-11-23T13:00:20Z").unwrap();
    for (id, kind) in [("missed_call", Kind::Notification), ("call_taken", Kind::Clearing)] {
        let params = Params::sample(kind, now);
        let mut bytes = 0;
        for _ in 0..2_000 {
            rules.templates.render(id, &params).unwrap();
        }
        let n = 100_000;
        let started = Instant::now();
        for _ in 0..n {
            let r = rules.templates.render(id, &params).unwrap();
            bytes += r.subject.len() + r.email.map_or(0, |e| e.len()) + r.sms.map_or(0, |s| s.body.len());
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "templates: {id:<12} {:>9.0} renders/s  ({:.2} µs each, {} bytes of output per render)",
            n as f64 / secs,
            secs * 1e6 / n as f64,
            bytes / n
        );
    }
}

/// aiosmtpd accepting and discarding every message (`Sink`), so the figure is the client's.
struct Smtp(Child, u16);

impl Smtp {
    fn start() -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Sink"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let deadline = Instant::now() + StdDuration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(StdDuration::from_millis(20));
        }
        Smtp(child, port)
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rota-bench-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const RULES: &str = r#"
agents.define { id = "duty", name = "Duty Agent", email = "duty@example.com", time_zone = "Europe/Oslo" }
queues.define { id = "q", agents = { "duty" }, policy = "longest_idle", standby = "hung_up" }
templates.define {
    id = "hung_up",
    subject = "{{ caller.name }} hung up after {{ conversation.waited | duration }}",
    email = "<p>Hello {{ recipient.name }},</p><p>{{ caller.name }} ({{ caller.number }}) called {{ queue.name }} at {{ now | datetime('%H:%M') }} and left after {{ conversation.waited | duration }}.</p>",
}
standby.define { id = "hung_up", on = "abandoned", notify = { agents = { "duty" } }, channels = "email", template = "hung_up" }
"#;

async fn email(n: usize) {
    println!("email: {n} messages to aiosmtpd (Sink) on 127.0.0.1, {CONCURRENCY} in flight");
    let smtp = Smtp::start();
    let dir = scratch();
    std::fs::write(dir.join("rules.lua"), RULES).unwrap();

    // rota end to end: n notifications are made and written to the outbox first; then the
    // deliverer starts, and the clock runs until the log says every one was sent.
    let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-11-23T13:00:00Z").unwrap());
    let store = SqliteStore::open(dir.join("rota.db")).unwrap();
    let handle = Arc::new(Builder::new(&dir).clock(clock).store(store).start().unwrap());
    for k in 0..n {
        let id = format!("c{k}");
        let caller = rota::conversation::Party {
            name: Some(format!("Caller {k}")),
            number: Some("+4791234567".into()),
            sip: None,
        };
        let arrive = NewConversation { id: id.clone(), queue: "q".into(), caller, ..NewConversation::default() };
        handle.submit(Input::Arrive(Box::new(arrive))).await.unwrap();
        handle.submit(Input::Abandon { conversation: id }).await.unwrap();
    }
    let mut config = EmailConfig::new("127.0.0.1", "Rota <rota@example.com>");
    config.port = Some(smtp.1);
    config.tls = Tls::None;
    config.pool = POOL;
    let mut notify = NotifyConfig::default();
    notify.per_recipient_hour = 0;
    notify.per_recipient_day = 0;
    notify.concurrency = CONCURRENCY;
    notify.outbox_dir = dir.join("outbox");
    let log = handle.notification_log().unwrap();
    let sent = || log.lock().unwrap().counts().unwrap().into_iter().find(|(s, _)| s == "sent").map_or(0, |c| c.1);
    let senders = Senders::new(Some(&config), None, None, &notify).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let deliverer =
        rota::delivery::spawn(handle.take_notifications().unwrap(), senders, notify, handle.clone(), stopped).unwrap();
    while sent() < n as u64 {
        assert!(started.elapsed() < StdDuration::from_secs(600), "only {} of {n} sent", sent());
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "email: {:<40} {:>7.0} emails/s  ({secs:.2} s)",
        format!("rota outbox -> SMTP, pool of {POOL}"),
        n as f64 / secs
    );
    let _ = stop.send(true);
    let _ = tokio::task::spawn_blocking(move || deliverer.join()).await;
    let _ = handle.close().await;

    // lettre alone, the same kind of message, with a pool and with a new connection per message.
    let messages: Vec<Message> = (0..n)
        .map(|k| {
            Message::builder()
                .message_id(Some(format!("<bench.{k}@example.com>")))
                .from("Rota <rota@example.com>".parse().unwrap())
                .to("duty@example.com".parse().unwrap())
                .subject(format!("Caller {k} hung up after 0s"))
                .header(ContentType::TEXT_HTML)
                .body(format!(
                    "<p>Hello Duty Agent,</p><p>Caller {k} (+4791234567) called q at 14:00 and left after 0s.</p>"
                ))
                .unwrap()
        })
        .collect();
    let port = smtp.1;
    let transport = move |pool: u32| {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .pool_config(PoolConfig::new().max_size(pool))
            .build::<Tokio1Executor>()
    };
    for pooled in [true, false] {
        let shared = transport(POOL);
        let started = Instant::now();
        let chunks: Vec<Vec<Message>> = messages.chunks(n.div_ceil(CONCURRENCY)).map(<[Message]>::to_vec).collect();
        let tasks = chunks.into_iter().map(|chunk| {
            let shared = shared.clone();
            async move {
                for m in chunk {
                    if pooled {
                        shared.send(m).await.unwrap();
                    } else {
                        // A transport of its own: a new connection for this message.
                        transport(1).send(m).await.unwrap();
                    }
                }
            }
        });
        futures_util::future::join_all(tasks).await;
        let secs = started.elapsed().as_secs_f64();
        let what = if pooled { format!("pool of {POOL}") } else { "a connection per message".into() };
        println!("email: {:<40} {:>7.0} emails/s  ({secs:.2} s)", format!("lettre alone, {what}"), n as f64 / secs);
    }

    // What one message costs on one kept connection, one at a time: lettre 0.11.23 leaves
    // Nagle on, so the 5-byte end of DATA waits for the server's delayed ACK (~40 ms here).
    let one = transport(1);
    one.send(messages[0].clone()).await.unwrap();
    let started = Instant::now();
    for m in messages.iter().skip(1).take(100) {
        one.send(m.clone()).await.unwrap();
    }
    println!(
        "email: lettre alone, one connection, one at a time: {:.1} ms per message",
        started.elapsed().as_secs_f64() * 10.0
    );
}
