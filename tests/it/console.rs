//! The console at `/`, in a real browser (Debian's headless Chromium through chromedriver)
//! against a live `rota serve` on the example scripts: an agent's panel, the wallboard and the
//! back office, as a person would use them. Each view's screenshot is kept in
//! `target/tmp/console/`.

use serde_json::json;

use crate::common::browser::Browser;
use crate::common::{self, Scratch};

const TOKEN: &str = "console-test";
const NORTH: &str = "console-north";

/// The example scripts' support queue: Anna signs in, goes to Callcenter and starts her work
/// day from her panel, a
/// call is offered to her live and she accepts it; after it is closed her wrap-up counts down,
/// and she pauses for lunch. On the wallboard a second call's waiting count shows as it
/// arrives; when that caller hangs up, the callback task appears in the back office, and
/// pushing its button there takes it away; the standby view shows who is on duty and the
/// notification the hang-up sent them, with its attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_a_supervisor_and_the_back_office_work_from_the_console() {
    let dir = Scratch::new(&[]);
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let config = dir.0.join("rota.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = \"rota.db\"\nscripts = {:?}\n[[tokens]]\ntoken = \"{TOKEN}\"\nunits = [\"*\"]\n\
             [[tokens]]\ntoken = \"{NORTH}\"\nunits = [\"north\"]\n[notify]\noutbox_dir = \"outbox\"\n",
            scripts.display().to_string()
        ),
    )
    .unwrap();
    let mut server = common::spawn(&config);
    let base = server.base.clone();
    let client = common::http_client();
    let post = |path: &str, body: serde_json::Value| {
        let req = client.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send();
        let path = path.to_string();
        async move {
            let res = req.await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.text().await.unwrap());
        }
    };
    let browser = Browser::start().await;

    // The console asks for a token first, and shows what the token may see: the example
    // center is all in the default unit, so a token of another unit sees none of it.
    browser.go(&format!("{base}/")).await;
    browser.type_into("#token", NORTH).await;
    browser.click("#token-form button[type=submit]").await;
    browser.wait_for("h1", |t| t == "Wallboard").await;
    let seen = browser.wait_for("#view", |t| t.contains("Agents")).await;
    assert!(!seen.contains("Anna Berg") && !seen.contains("Customer support"), "{seen}");
    browser.click("#sign-out-token").await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#token-form button[type=submit]").await;
    browser.wait_for("#view", |t| t.contains("Anna Berg") && t.contains("Customer support")).await;

    // Anna's panel: sign in, Callcenter.
    browser.go(&format!("{base}/#/agent/anna")).await;
    browser.click("#sign-in").await;
    browser.wait_for("#sign-out", |t| t == "Sign out").await;
    browser.click("#status-callcenter").await;
    browser.wait_for("#status-heading", |_| true).await;
    let pressed = || async { browser.text("#status-callcenter[aria-pressed=true]").await };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pressed().await.is_none() {
        assert!(std::time::Instant::now() < deadline, "Callcenter never showed as set");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser.wait_for("#state", |t| t == "waiting").await;
    // The example rules count work days: hers starts from the panel too.
    browser.click("#start-day").await;
    browser.wait_for("#end-day", |t| t == "End the work day").await;
    // A call comes in: the offer shows on her panel without a reload.
    post("/v1/conversations", json!({"id": "c1", "queue": "support"})).await;
    browser.wait_for("#offer strong", |t| t == "Offered: c1").await;
    browser.screenshot("agent-offered").await;
    browser.click("#accept").await;
    browser.wait_for("#state", |t| t == "busy").await;
    // Closed: wrap-up (30 s for support) counts down.
    post("/v1/conversations/c1/close", json!({})).await;
    browser.wait_for("#state", |t| t == "post processing").await;
    let seconds = |t: &str| -> u64 {
        let (m, s) = t.split_once(':').unwrap_or(("0", "x"));
        m.parse::<u64>().unwrap_or(99) * 60 + s.parse::<u64>().unwrap_or(99 * 60)
    };
    let first = browser.wait_for("#wrap-up", |t| (1..=30).contains(&seconds(t))).await;
    let later = browser.wait_for("#wrap-up", |t| seconds(t) < seconds(&first)).await;
    assert!(seconds(&later) < seconds(&first), "{first} then {later}");
    browser.screenshot("agent-wrap-up").await;
    // A pause with a cause from the list.
    browser.click("#pause-cause option[value=lunch]").await;
    browser.click("#pause").await;
    browser.wait_for("#state", |t| t == "paused").await;
    browser.wait_for("#view", |t| t.contains("Lunch")).await;
    browser.wait_for("#resume", |t| t == "Resume").await;

    // The wallboard: a second call waits (Anna is at lunch) and shows at once.
    browser.go(&format!("{base}/#/wallboard")).await;
    browser.wait_for("#waiting-support", |t| t == "0").await;
    post("/v1/conversations", json!({"id": "c2", "queue": "support", "caller": {"number": "+4712345678"}})).await;
    browser.wait_for("#waiting-support", |t| t == "1").await;
    // Its wait so far, ticking.
    browser.wait_for("#oldest-support", |t| t.contains(':')).await;
    browser.screenshot("wallboard").await;

    // The caller hangs up: the callback task appears in the back office; "done" takes it away.
    browser.go(&format!("{base}/#/tasks")).await;
    browser.wait_for("#no-tasks", |_| true).await;
    post("/v1/conversations/c2/abandon", json!({})).await;
    let task = browser.wait_for("#view table tr", |t| t.contains("Call the customer back")).await;
    assert!(task.contains("c2"), "{task}");
    browser.screenshot("back-office").await;
    browser.click("#view table tr button").await;
    browser.wait_for("#no-tasks", |t| t == "Nothing to do.").await;

    // Standby: who is on duty for support and until when; the hang-up's notification to
    // them, with its attempt.
    browser.go(&format!("{base}/#/standby")).await;
    let duty = browser.wait_for("#schedule-support_duty", |t| t.contains("hands off in")).await;
    assert!(duty.contains("bjorn") || duty.contains("carla"), "{duty}");
    let sent = browser.wait_for("#view details summary", |t| t.contains("sent")).await;
    assert!(sent.contains("by email") || sent.contains("by sms"), "{sent}");
    browser.click("#view details summary").await;
    browser.wait_for("#view details .attempts li", |t| t.contains("sent")).await;
    browser.screenshot("standby").await;

    // The other views draw.
    for (view, heading) in [("scripts", "Scripts — generation 1"), ("conversation/c1", "Conversation c1")] {
        browser.go(&format!("{base}/#/{view}")).await;
        browser.wait_for("h1", |t| t == heading).await;
        browser.screenshot(&view.replace('/', "-")).await;
    }
    // Back from lunch.
    browser.go(&format!("{base}/#/agent/anna")).await;
    browser.click("#resume").await;
    browser.wait_for("#state", |t| t == "waiting").await;

    // On a phone: every view fits the width (nothing to scroll sideways).
    browser.resize(390, 844).await;
    for view in ["agent/anna", "wallboard", "tasks", "standby"] {
        browser.go(&format!("{base}/#/{view}")).await;
        browser.wait_for("h1", |t| !t.is_empty() && t != "Sign in to the console").await;
        let width = browser.eval("return [document.documentElement.scrollWidth, window.innerWidth]").await;
        assert!(width[0].as_u64() <= width[1].as_u64(), "{view} is wider than the phone: {width}");
        browser.screenshot(&format!("phone-{}", view.replace('/', "-"))).await;
    }
    browser.quit().await;
    let _ = server.child.kill();
    let _ = server.child.wait();
}
