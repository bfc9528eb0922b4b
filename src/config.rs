//! The `rota serve` configuration file (TOML). Every key has a default that works on a fresh
//! machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::delivery::{EmailConfig, NotifyConfig, Senders, SmsConfig, WebhookChannelConfig};
use crate::http::Token;
use crate::script::Limits;
use crate::webhook::{Retry, Webhook};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: toml::de::Error },
    /// A problem found in the file at `path`.
    #[error("{}: {source}", path.display())]
    InFile { path: PathBuf, source: Box<ConfigError> },
    #[error("webhook `{name}`: {source}")]
    Webhook { name: String, source: crate::outbound::ClientError },
    /// A setting that cannot work as given, or settings that contradict each other.
    #[error("{0}")]
    Invalid(String),
}

/// The token used when the configuration names none: for trying rota out on one machine.
pub const DEV_TOKEN: &str = "rota-dev-token";

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// The store: a SQLite database file, or a PostgreSQL database as a `postgres://` URL.
    pub db: PathBuf,
    /// The scripts folder.
    pub scripts: PathBuf,
    /// Bearer tokens and their organization units (`"*"`: all units).
    pub tokens: Vec<Token>,
    pub limits: LimitsConfig,
    pub http: HttpConfig,
    /// Receivers of events, each a signed POST per event, retried from the outbox.
    pub webhooks: Vec<Webhook>,
    pub delivery: DeliveryConfig,
    /// The SMTP server notifications are emailed through; without one they are .eml files.
    pub email: Option<EmailConfig>,
    /// The SMS provider; without one, SMS are .json files.
    pub sms: Option<SmsConfig>,
    /// Where the `webhook` channel of standby rules posts; without one, .json files.
    pub notify_webhook: Option<WebhookChannelConfig>,
    /// Retries, dead-lettering and rate limits of notifications, and the outbox folder.
    pub notify: NotifyConfig,
    /// Snapshots of the engine's state in the database file.
    pub store: StoreConfig,
    /// Organization units grouped into partitions, each its own engine (PostgreSQL only).
    pub partitions: PartitionsConfig,
}

/// `[partitions]`: how many, and units placed by hand (`[partitions.units] north = 0`); the
/// others are hashed onto them. A database keeps the partitioning it was made with.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PartitionsConfig {
    pub count: u32,
    pub units: std::collections::BTreeMap<String, u32>,
}

impl Default for PartitionsConfig {
    fn default() -> Self {
        PartitionsConfig { count: 1, units: Default::default() }
    }
}

/// When `rota serve` writes snapshots: a start reads the newest and replays only the journal
/// after it.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// A snapshot after this many journaled steps...
    pub snapshot_every_steps: u64,
    /// ... or this many minutes after the last one, when anything happened since.
    pub snapshot_every_minutes: u64,
    /// Snapshots kept (the newest ones).
    pub keep_snapshots: usize,
    /// Days of journal kept behind the oldest snapshot, for audit; older records are forgotten.
    pub audit_days: u32,
    /// On PostgreSQL: this node's name in the database's lease (the host name by default).
    pub node: Option<String>,
    /// On PostgreSQL: how long the lease lasts unless renewed; a standby takes over this long
    /// after the owner died.
    pub lease_ms: u64,
    /// On PostgreSQL: the address other nodes give for this one while it owns the database
    /// (`http://` and the listen address by default).
    pub advertise: Option<String>,
    /// On PostgreSQL: how long a deliverer's claim on a message lasts; another node delivers
    /// it again (same id) only once that has run out. At least twice the longest delivery
    /// timeout; by default that, and at least a minute.
    pub claim_ms: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let p = crate::runtime::SnapshotPolicy::default();
        StoreConfig {
            snapshot_every_steps: p.every_steps,
            snapshot_every_minutes: (p.every.0 / 60_000) as u64,
            keep_snapshots: p.keep,
            audit_days: (p.audit.0 / 86_400_000) as u32,
            node: None,
            lease_ms: crate::store::Lease::default().duration.as_millis() as u64,
            advertise: None,
            claim_ms: None,
        }
    }
}

impl StoreConfig {
    pub fn policy(&self) -> crate::runtime::SnapshotPolicy {
        let every = crate::time::Duration::from_secs(self.snapshot_every_minutes.saturating_mul(60) as i64);
        let audit = crate::time::Duration::from_secs(i64::from(self.audit_days) * 86_400);
        crate::runtime::SnapshotPolicy::new(self.snapshot_every_steps, every, self.keep_snapshots, audit)
    }
}

/// How the outbox retries a channel that is down.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// Delay after a first failed delivery, in milliseconds; doubled after each further one.
    pub first_retry_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    pub max_retry_ms: u64,
    /// Longest wait for a receiver's answer, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let r = Retry::default();
        DeliveryConfig {
            first_retry_ms: r.first.as_millis() as u64,
            max_retry_ms: r.max.as_millis() as u64,
            timeout_ms: r.timeout.as_millis() as u64,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Memory a Lua call may use, in MiB.
    pub lua_memory_mib: usize,
    /// Memory the Lua VM may hold in all (view tables, memos, module state), in MiB.
    pub lua_memory_total_mib: usize,
    /// Ended conversations kept in memory for reading back through the API (oldest go first).
    pub keep_ended: usize,
    /// Days an ended conversation is kept at most (0: as long as `keep_ended` allows).
    pub keep_ended_days: u32,
    /// CPU time one policy call may use, in milliseconds.
    pub lua_cpu_ms: u64,
    /// Skipped candidates a decision's trace names; the others are counted by reason.
    pub trace_skips: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Largest request body, in KiB.
    pub body_limit_kib: usize,
    /// Time a request may take, in milliseconds.
    pub timeout_ms: u64,
    /// Quiet time after a script change before reloading, in milliseconds.
    pub reload_debounce_ms: u64,
    /// Web origins (`https://console.example.com`) whose pages may call the API (CORS).
    pub cors_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:7878".parse().expect("a valid address"),
            db: "rota.db".into(),
            scripts: "scripts".into(),
            tokens: Vec::new(),
            limits: LimitsConfig::default(),
            http: HttpConfig::default(),
            webhooks: Vec::new(),
            delivery: DeliveryConfig::default(),
            email: None,
            sms: None,
            notify_webhook: None,
            notify: NotifyConfig::default(),
            store: StoreConfig::default(),
            partitions: PartitionsConfig::default(),
        }
    }
}

impl LimitsConfig {
    /// The sandbox limits these settings give.
    pub fn limits(&self) -> Limits {
        Limits {
            memory: self.lua_memory_mib * 1024 * 1024,
            memory_total: self.lua_memory_total_mib * 1024 * 1024,
            cpu_per_call: std::time::Duration::from_millis(self.lua_cpu_ms),
            ..Limits::default()
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = Limits::default();
        LimitsConfig {
            lua_memory_mib: limits.memory / (1024 * 1024),
            lua_memory_total_mib: limits.memory_total / (1024 * 1024),
            keep_ended: crate::engine::EngineConfig::RETAIN_ENDED,
            keep_ended_days: 30,
            lua_cpu_ms: limits.cpu_per_call.as_millis() as u64,
            trace_skips: crate::engine::EngineConfig::TRACE_SKIPS,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { body_limit_kib: 64, timeout_ms: 10_000, reload_debounce_ms: 200, cors_origins: Vec::new() }
    }
}

impl Config {
    /// Reads a config file; relative paths in it are taken from the file's folder.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut config: Config =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        let base = path.parent().unwrap_or(Path::new(""));
        if !config.db.to_str().is_some_and(crate::store::is_postgres) {
            config.db = base.join(&config.db);
        }
        config.scripts = base.join(&config.scripts);
        config.notify.outbox_dir = base.join(&config.notify.outbox_dir);
        let ca_files = (config.webhooks.iter_mut().map(|w| &mut w.ca_file))
            .chain(config.sms.iter_mut().map(SmsConfig::ca_file_mut))
            .chain(config.notify_webhook.iter_mut().map(|w| &mut w.ca_file))
            .chain(config.email.iter_mut().map(|e| &mut e.ca_file));
        for file in ca_files.flatten() {
            *file = base.join(&*file);
        }
        config.check().map_err(|e| ConfigError::InFile { path: path.into(), source: Box::new(e) })?;
        Ok(config)
    }

    /// Problems the TOML parser cannot see: a webhook that cannot work, a name used twice.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (i, hook) in self.webhooks.iter().enumerate() {
            hook.check()?;
            if self.webhooks[..i].iter().any(|h| h.name == hook.name) {
                return Err(ConfigError::Invalid(format!("two webhooks are named `{}`", hook.name)));
            }
        }
        if self.notify.keep_days == 1 {
            let message =
                "notify.keep_days must be 0 (keep for good) or at least 2: the per-recipient limits look back a day";
            return Err(ConfigError::Invalid(message.into()));
        }
        self.partitioning()?;
        let (longest, what) = self.longest_delivery();
        if let Some(claim) = self.store.claim_ms.filter(|&ms| ms < longest.saturating_mul(2)) {
            return Err(ConfigError::Invalid(format!(
                "store.claim_ms ({claim}) must be at least twice the longest delivery timeout ({what}: {longest} ms), \
                 or a slow delivery could be claimed and sent again by another node while it is still under way"
            )));
        }
        self.senders().map(|_| ())
    }

    /// How the units are partitioned.
    pub fn partitioning(&self) -> Result<crate::partition::Partitioning, ConfigError> {
        let p = crate::partition::Partitioning::new(self.partitions.count, self.partitions.units.clone())
            .map_err(|e| ConfigError::Invalid(format!("partitions: {e}")))?;
        if p.count() > 1 && !self.db.to_str().is_some_and(crate::store::is_postgres) {
            let message = "partitions.count above 1 needs a PostgreSQL database (db = \"postgres://…\"), which keeps \
                           each partition's journal and lease and records how the units are partitioned";
            return Err(ConfigError::Invalid(message.into()));
        }
        Ok(p)
    }

    /// The PostgreSQL lease this node holds its database under (`[store]`), deliverers' claims
    /// lasting `claim_ms`, by default twice the longest delivery timeout and at least a minute.
    pub fn lease(&self) -> crate::store::Lease {
        let store = &self.store;
        let claim = store.claim_ms.unwrap_or_else(|| self.longest_delivery().0.saturating_mul(2).max(60_000));
        crate::store::Lease {
            node: store.node.clone().unwrap_or_else(|| crate::store::Lease::default().node),
            // At least a tenth of a second: the heartbeat renews it every third.
            duration: std::time::Duration::from_millis(store.lease_ms.max(100)),
            address: store.advertise.clone(),
            claim: std::time::Duration::from_millis(claim),
        }
    }

    /// The longest any one delivery attempt may take, and whose timeout that is.
    fn longest_delivery(&self) -> (u64, &'static str) {
        let default = crate::delivery::DEFAULT_TIMEOUT_MS;
        let sms = self.sms.as_ref().map(|s| match s {
            SmsConfig::Twilio { timeout_ms, .. } | SmsConfig::Json { timeout_ms, .. } => timeout_ms.unwrap_or(default),
        });
        [
            Some((self.delivery.timeout_ms, "delivery.timeout_ms")),
            self.email.as_ref().map(|e| (e.timeout_ms, "email.timeout_ms")),
            sms.map(|ms| (ms, "sms.timeout_ms")),
            self.notify_webhook.as_ref().map(|w| (w.timeout_ms.unwrap_or(default), "notify_webhook.timeout_ms")),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|(ms, _)| *ms)
        .unwrap_or((0, ""))
    }

    /// The notification channels this configuration sets up.
    pub fn senders(&self) -> Result<Senders, ConfigError> {
        Senders::new(self.email.as_ref(), self.sms.as_ref(), self.notify_webhook.as_ref(), &self.notify)
            .map_err(ConfigError::Invalid)
    }

    pub fn retry(&self) -> Retry {
        let ms = std::time::Duration::from_millis;
        Retry {
            first: ms(self.delivery.first_retry_ms),
            max: ms(self.delivery.max_retry_ms),
            timeout: ms(self.delivery.timeout_ms),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits.limits()
    }

    /// Refuses to serve beyond this machine with only the development token: its value is
    /// public (it is in the README), so anyone who can reach the port could do anything.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if self.tokens.is_empty() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "no tokens are configured, and {} is reachable from other machines: the development \
                 token works only on a loopback address (127.0.0.1). Add a token to the config file:\n\n\
                 [[tokens]]\ntoken = \"a-long-random-secret\"\nunits = [\"*\"]\n\n\
                 or listen on 127.0.0.1",
                self.listen
            )));
        }
        Ok(())
    }

    /// The configured tokens, or the development token for all units when there are none.
    pub fn tokens_or_dev(&self) -> (Vec<Token>, bool) {
        if self.tokens.is_empty() {
            (vec![Token::new(DEV_TOKEN, ["*"]).named("development")], true)
        } else {
            (self.tokens.clone(), false)
        }
    }

    pub fn api(&self) -> crate::http::ApiConfig {
        crate::http::ApiConfig {
            tokens: self.tokens_or_dev().0,
            auth: crate::http::Auth::Tokens,
            body_limit: self.http.body_limit_kib * 1024,
            timeout: std::time::Duration::from_millis(self.http.timeout_ms),
            cors_origins: self.http.cors_origins.clone(),
        }
    }
}
