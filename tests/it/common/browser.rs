//! Debian's headless Chromium, driven through its chromedriver with the W3C WebDriver protocol
//! (JSON over HTTP, spoken here with reqwest): enough of it for the console's tests to open a
//! page, find, read, click and type, and save a screenshot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Browser {
    driver: Child,
    url: String,
    session: String,
    client: reqwest::Client,
    _profile: super::Scratch,
}

/// The key WebDriver gives an element reference under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// A new headless Chromium (a fresh profile, 1280 x 900) under its own chromedriver.
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) runs");
        let url = format!("http://127.0.0.1:{port}");
        let client = super::http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{url}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = super::Scratch::new(&[]);
        // As root, in a sandbox without a network: no sandbox of its own, nothing fetched.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("--user-data-dir={}", profile.0.display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let res: Value = client.post(format!("{url}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {res}")).to_string();
        Browser { driver, url, session, client, _profile: profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.client.request(method, format!("{}/session/{}{path}", self.url, self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// The element `css` finds, if any.
    async fn find(&self, css: &str) -> Option<String> {
        let found =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        found[ELEMENT].as_str().map(str::to_string)
    }

    /// The text of the element `css` finds, if there is one (an element redrawn between the
    /// look and the read reads as absent).
    pub async fn text(&self, css: &str) -> Option<String> {
        let id = self.find(css).await?;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None).await.as_str().map(str::to_string)
    }

    /// Waits (at most ten seconds) until the element `css` finds has a text `wanted` likes;
    /// that text. Fails naming what it saw last.
    pub async fn wait_for(&self, css: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(css).await;
            if let Some(text) = text.as_deref().filter(|t| wanted(t)) {
                return text.to_string();
            }
            assert!(Instant::now() < deadline, "{css}: still {text:?}; the page says {:?}", self.text("body").await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` finds, once there is one.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.find(css).await {
                let done = self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
                // A redraw between finding and clicking: find it again.
                if done.is_null() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nothing to click at {css}; the page says {:?}",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the element `css` finds, once there is one.
    pub async fn type_into(&self, css: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let id = loop {
            if let Some(id) = self.find(css).await {
                break id;
            }
            assert!(Instant::now() < deadline, "nothing to type into at {css}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({ "text": text }))).await;
    }

    /// Saves what the page looks like as `name.png` in the tests' own folder
    /// (`target/tmp/console/`), kept after the run as an artifact; its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The window's size, in CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// What `script` (a function body) returns, run in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    pub async fn quit(mut self) {
        let _ = self.client.delete(format!("{}/session/{}", self.url, self.session)).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
