//! Every command the README shows in a ```sh block, run in order as a reader on a fresh machine
//! would: in a folder holding copies of `scripts/` and `examples/`, with the server the page
//! starts (`cargo run --release -- serve`, here the binary under test on a free port) answering
//! the page's curl session as real curl would be answered.
//!
//! Cargo commands are checked against what this suite and `.ci/run` already cover (below), so a
//! new one on the page needs a decision here.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::walkthrough::{self, Reader, Step};
use common::Scratch;

/// Cargo commands the page may show, and why running them here is not needed.
const COVERED: &[(&str, &str)] = &[
    ("cargo test", "this suite is `cargo test`"),
    ("cargo test --release --test it property", "tests/it/property.rs runs in this suite with its CI seed"),
    ("cargo install --path .", "installs the binary this suite runs (CARGO_BIN_EXE_rota)"),
    ("cargo bench --bench day", "built by `cargo test --benches --no-run` in .ci/run"),
    ("cargo bench --bench serve", "built by `cargo test --benches --no-run` in .ci/run"),
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Starts a long-running program and waits for the line that says where it listens.
fn start(mut command: Command, marker: &str) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.by_ref().map_while(Result::ok).find(|l| l.contains(marker)).expect("it says where it listens");
    std::thread::spawn(move || for _ in lines {});
    (child, line)
}

/// What `curl` with these arguments does: a request as curl makes it (`-d` sends the
/// form-encoded content type, as real curl does), and its answer.
async fn curl(client: &reqwest::Client, args: &[String]) -> (u16, String) {
    let (mut method, mut headers, mut data, mut url, mut stream) = (None, Vec::new(), None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" => {}
            "-N" => stream = true,
            "-X" => method = it.next().cloned(),
            "-H" => headers.push(it.next().unwrap().clone()),
            "-d" => data = it.next().cloned(),
            other if !other.starts_with('-') => url = Some(other.to_string()),
            other => panic!("curl option {other} is not understood here"),
        }
    }
    let method = method.unwrap_or(if data.is_some() { "POST".into() } else { "GET".into() });
    let mut req = client.request(method.parse().unwrap(), url.expect("a URL"));
    for h in &headers {
        let (name, value) = h.split_once(':').unwrap();
        req = req.header(name.trim(), value.trim());
    }
    if let Some(body) = data {
        req = req.header("content-type", "application/x-www-form-urlencoded").body(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if stream {
        // An event stream never ends: that it opened as one is what a reader sees first.
        let kind = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        return (status, kind);
    }
    (status, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_in_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("README.md")).unwrap();
    let home = Scratch::new(&[]);
    copy_dir(&root.join("scripts"), &home.0.join("scripts"));
    copy_dir(&root.join("examples"), &home.0.join("examples"));
    let mut reader = Reader::new(&home.0);
    let client = common::http_client();
    let mut children: Vec<Child> = Vec::new();
    let mut base: Option<String> = None;
    let mut done = Vec::new();
    for step in walkthrough::steps(&page, false) {
        let Step::Run { line, .. } = step else { continue };
        for part in line.split("&&") {
            let words = reader.words(part);
            if let Some(b) = &base {
                // The page's `B=http://127.0.0.1:7878` is the server it started: here, on a free port.
                reader.vars.insert("B".into(), b.clone());
            }
            let Some(program) = words.first() else { continue };
            let command = words.join(" ");
            match program.as_str() {
                "cargo" if command == "cargo run --release -- serve" => {
                    let mut serve = Command::new(env!("CARGO_BIN_EXE_rota"));
                    serve.args(["serve", "--listen", "127.0.0.1:0"]).current_dir(&reader.cwd);
                    let (child, listening) = start(serve, "rota listening on ");
                    base = Some(listening.trim_start_matches("rota listening on ").to_string());
                    children.push(child);
                }
                "cargo" if command.starts_with("cargo run -q -- ") => {
                    let rota = command.replacen("cargo run -q -- ", "rota ", 1);
                    let ran = reader.run(&rota).remove(0);
                    assert_eq!(ran.code, 0, "`{line}`:\n{}{}", ran.stdout, ran.stderr);
                }
                "cargo" if command.starts_with("cargo run --example ") => {
                    let name = &words[3];
                    // `cargo test` builds the examples next to the test binaries.
                    let exe = std::env::current_exe()
                        .unwrap()
                        .parent()
                        .unwrap()
                        .parent()
                        .unwrap()
                        .join("examples")
                        .join(name);
                    let mut example = Command::new(&exe);
                    example.current_dir(&reader.cwd);
                    if name == "axum_mount" {
                        // A server: it runs until stopped; that it listens is what the reader sees.
                        let (mut child, _) = start(example, "listening on ");
                        let _ = child.kill();
                        let _ = child.wait();
                    } else {
                        let out = example.output().unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
                        assert!(out.status.success(), "`{line}`:\n{}", String::from_utf8_lossy(&out.stderr));
                    }
                }
                "cargo" => {
                    assert!(
                        COVERED.iter().any(|(c, _)| *c == command),
                        "the README shows `{command}`; run it here or say in COVERED why it need not be"
                    );
                }
                "curl" => {
                    let (status, body) = curl(&client, &words[1..]).await;
                    assert!((200..300).contains(&status), "`{line}` answered {status}: {body}");
                    if words.iter().any(|w| w == "-N") {
                        assert_eq!(body, "text/event-stream", "`{line}`");
                    }
                }
                _ => {
                    if let Some(ran) = reader.command(&words, &line) {
                        assert_eq!(ran.code, 0, "`{line}` failed:\n{}{}", ran.stdout, ran.stderr);
                    }
                }
            }
            done.push(command);
        }
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(base.is_some(), "the README never started the server");
    assert!(done.iter().filter(|c| c.starts_with("curl")).count() >= 8, "the curl session was not found: {done:?}");
    assert!(done.iter().any(|c| c.starts_with("rota init")), "{done:?}");
}
