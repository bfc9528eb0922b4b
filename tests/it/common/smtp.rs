//! A real SMTP server for the tests: aiosmtpd writing a Maildir, and a reader for what it wrote.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use rota::delivery::{EmailConfig, Tls};

/// aiosmtpd on a free port, delivering into a Maildir; stopped when dropped.
pub struct Smtp {
    pub child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Smtp {
    pub fn start(maildir: &Path, port: u16) -> Smtp {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd; .ci/run does)");
        let smtp = Smtp { child, port, maildir: maildir.to_path_buf() };
        let deadline = Instant::now() + StdDuration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start listening on {port}");
            std::thread::yield_now();
        }
        smtp
    }

    /// Every message delivered so far.
    pub fn mails(&self) -> Vec<Mail> {
        maildir(&self.maildir)
    }

    pub fn config(&self) -> EmailConfig {
        let mut config = EmailConfig::new("127.0.0.1", "Rota Standby <rota@example.com>");
        config.port = Some(self.port);
        config.tls = Tls::None;
        config.pool = 2;
        config.timeout_ms = 2000;
        config
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages in a Maildir, by Message-ID.
pub fn maildir(dir: &Path) -> Vec<Mail> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in entries.flatten() {
            out.push(Mail::parse(&std::fs::read_to_string(e.path()).unwrap()));
        }
    }
    out.sort_by(|a, b| a.header("message-id").cmp(b.header("message-id")));
    out
}

pub struct Mail {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Mail {
    pub fn parse(text: &str) -> Mail {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        // Bodies come quoted-printable: undo soft line breaks and the few escapes templates make.
        let body = body.replace("=\n", "").replace("=3D", "=").replace("=20", " ");
        Mail { headers, body }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}
