//! A throwaway PostgreSQL cluster for the tests: `initdb` into a scratch folder, `pg_ctl
//! start` on a free port of 127.0.0.1, one fresh database per test, stopped and removed when
//! the last handle goes. Run as root (as CI is), the server runs as the `postgres` user, since
//! PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

/// One cluster for every test that runs at the same time; the last to finish stops it.
static SHARED: OnceLock<Mutex<Weak<Cluster>>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// Where `initdb` and `pg_ctl` are: `PG_BIN` if set, else the newest Debian install, else PATH.
fn bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root.
fn run(bin: &Path, program: &str, args: &[&str]) {
    let exe = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {}: {e} (the tests need PostgreSQL's server programs; .ci/run installs them)", exe.display())
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// The running cluster, started if no test holds one.
    pub fn get() -> Arc<Cluster> {
        let shared = SHARED.get_or_init(|| Mutex::new(Weak::new()));
        let mut held = shared.lock().unwrap();
        if let Some(c) = held.upgrade() {
            return c;
        }
        let c = Arc::new(Cluster::start());
        *held = Arc::downgrade(&c);
        c
    }

    fn start() -> Cluster {
        let bin = bin();
        let dir = std::env::temp_dir().join(format!("rota-pg-{}-{}", std::process::id(), super::smtp::free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let _ = Command::new("chown").args(["-R", "postgres"]).arg(&dir).status();
        }
        let data = dir.join("data");
        let data = data.to_str().unwrap();
        run(&bin, "initdb", &["-D", data, "-A", "trust", "-U", "rota", "-E", "UTF8", "--no-sync"]);
        let port = super::smtp::free_port();
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display());
        let log = dir.join("log");
        run(&bin, "pg_ctl", &["-D", data, "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
        Cluster { dir, bin, port }
    }

    /// A new, empty database, as a URL rota takes for `db`.
    pub fn database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
        let admin = self.url("postgres");
        let create = format!("CREATE DATABASE {name}");
        // The client runs a runtime of its own, which an async test must not enter.
        std::thread::spawn(move || {
            let mut admin = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            admin.batch_execute(&create).unwrap();
        })
        .join()
        .unwrap();
        self.url(&name)
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://rota@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        run(&self.bin, "pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
