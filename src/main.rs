//! The `rota` command: serve the API, check scripts, simulate scenarios, test rules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rota::config::{Config, LimitsConfig, DEV_TOKEN};
use rota::server::Server;

/// The engine allocates on every input (traces, updates, Lua tables); mimalloc keeps that
/// cheaper and more cache-friendly than the system allocator (see BENCHMARKS.md). The library
/// itself sets no allocator: an embedding program chooses its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "rota", version, about = "A host for contact-center rules written in Luau")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate a scripts folder; print problems as file:line: message.
    Check {
        /// The scripts folder.
        #[arg(default_value = "scripts")]
        dir: PathBuf,
        /// List the queues and rules that use this template, standby rule or schedule.
        #[arg(long)]
        where_used: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Write a small working scripts folder (rules and a test) into DIR to start from.
    Init {
        #[arg(default_value = "scripts")]
        dir: PathBuf,
    },
    /// Render a template of the scripts folder DIR with sample data, exactly as it would be sent.
    Preview {
        template: String,
        /// The scripts folder.
        #[arg(default_value = "scripts")]
        dir: PathBuf,
        /// The clearing message (it also knows who answered).
        #[arg(long)]
        clearing: bool,
        /// The scripts folder (older spelling of DIR).
        #[arg(long, hide = true)]
        scripts: Option<PathBuf>,
    },
    /// The state file: what it holds.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// On-duty schedules.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /v1/openapi.json` serves), to
    /// generate a client from.
    Openapi,
    /// Run the engine with the HTTP API, durable state and hot reload of the scripts.
    Serve {
        /// Config file (TOML); `rota.toml` is read when it exists.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides the config).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// SQLite database file (overrides the config).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Scripts folder (overrides the config).
        #[arg(long)]
        scripts: Option<PathBuf>,
        /// How log lines are written to stderr: `text` (default) or `json` (one object per
        /// line). `RUST_LOG` picks what is logged (`info` by default; `rota::http=warn`
        /// leaves out the request log).
        #[arg(long, default_value = "text")]
        log_format: LogFormat,
    },
    /// Run the `*_test.lua` files under DIR against the rules beside them, on virtual time.
    Test {
        #[arg(default_value = "scripts")]
        dir: PathBuf,
        /// human (default), tap (TAP version 14) or junit (JUnit XML).
        #[arg(long, default_value = "human")]
        format: rota::testing::report::Format,
        /// Only the cases whose name (`describe > it`) contains this.
        #[arg(long)]
        filter: Option<String>,
        /// CPU time one test case may use, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        cpu_ms: u64,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Write editor support into DIR: luau-lsp definitions of the Lua API, the stdlib modules,
    /// `.luaurc` and `.vscode/settings.json`.
    Types {
        #[arg(default_value = "scripts")]
        dir: PathBuf,
    },
    /// Replay a scenario file on a virtual clock and print its timeline.
    Simulate {
        scenario: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Format, journal length and span, rows per table and size of a store file; read-only,
    /// so it may run beside `rota serve`.
    Info {
        /// The SQLite file (by default the config's `db`).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Config file (TOML); `rota.toml` is read when it exists.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs retention now: forgets the journal behind the oldest snapshot (except the
    /// config's `store.audit_days`) and done notifications older than `notify.keep_days`,
    /// then gives the space back. Takes the store over, so `rota serve` must be stopped.
    Compact {
        /// The SQLite file (by default the config's `db`).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Config file (TOML); `rota.toml` is read when it exists.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Who is on duty in SCHEDULE of the scripts folder DIR at a time (now by default).
    Who {
        schedule: String,
        /// The scripts folder.
        #[arg(default_value = "scripts")]
        dir: PathBuf,
        /// `2026-12-24 20:00` in the schedule's time zone, or RFC 3339 (2026-12-24T20:00:00+01:00).
        #[arg(long)]
        at: Option<String>,
        /// The scripts folder (older spelling of DIR).
        #[arg(long, hide = true)]
        scripts: Option<PathBuf>,
    },
}

/// The sandbox limits of the Lua VM (the config file's `[limits]`, with its defaults).
#[derive(clap::Args)]
struct LimitArgs {
    /// Memory a policy call may use, in MiB.
    #[arg(long, default_value_t = LimitsConfig::default().lua_memory_mib)]
    lua_memory_mib: usize,
    /// CPU time one policy call may use, in milliseconds.
    #[arg(long, default_value_t = LimitsConfig::default().lua_cpu_ms)]
    lua_cpu_ms: u64,
}

impl LimitArgs {
    fn limits(&self) -> rota::script::Limits {
        let mut config = LimitsConfig::default();
        config.lua_memory_mib = self.lua_memory_mib;
        config.lua_cpu_ms = self.lua_cpu_ms;
        config.limits()
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rota: {}", rota::error::causes(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { dir, where_used: Some(id), limits } => {
            let rules = load_rules(&dir, &limits.limits())?;
            if rules.unit_of(&id).is_none() {
                anyhow::bail!("`{id}` is not a template, standby rule or schedule in {}", dir.display());
            }
            let users = rules.users_of(&id);
            if users.is_empty() {
                println!("`{id}` is not used; it can be removed");
            }
            for u in users {
                let at = format!("{}:{}", dir.join(&u.file).display(), u.line.unwrap_or(0));
                println!("{at}: {} `{}` uses {} `{id}`", u.kind, u.id, u.uses);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { dir } => {
            for path in rota::starter::write(&dir)? {
                println!("wrote {}", path.display());
            }
            let serve = match dir == Path::new("scripts") {
                true => "rota serve".to_string(),
                false => format!("rota serve --scripts {}", dir.display()),
            };
            println!("next: `rota test {}` runs its test, `{serve}` serves it", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Preview { template, dir, clearing, scripts } => {
            let scripts = scripts.unwrap_or(dir);
            let rules = load_rules(&scripts, &rota::script::Limits::default())?;
            if rules.templates.get(&template).is_none() {
                anyhow::bail!("no template `{template}` in {}", scripts.display());
            }
            // Which message the template is to the standby rules: it decides what it can show.
            let clearing_of: Vec<&str> = rules
                .standby
                .values()
                .filter(|r| r.clearing.as_deref() == Some(&template))
                .map(|r| r.id.as_str())
                .collect();
            let notification_of = rules.standby.values().any(|r| r.template == template);
            if clearing && clearing_of.is_empty() {
                anyhow::bail!(
                    "template `{template}` is no standby rule's clearing message, so it never knows who answered; \
                     preview it without --clearing"
                );
            }
            if !clearing && !notification_of && !clearing_of.is_empty() {
                anyhow::bail!(
                    "template `{template}` is the clearing message of {} (it may show `answered_by`); \
                     preview it with --clearing",
                    clearing_of.iter().map(|r| format!("rule `{r}`")).collect::<Vec<_>>().join(", ")
                );
            }
            let kind = if clearing { rota::template::Kind::Clearing } else { rota::template::Kind::Notification };
            let now = rota::time::Timestamp(chrono::Utc::now().timestamp_millis());
            let rendered = rules.templates.render(&template, &rota::template::Params::sample(kind, now))?;
            println!("Subject: {}", rendered.subject);
            if let Some(email) = &rendered.email {
                println!("\n--- email (HTML) ---\n{email}");
            }
            if let Some(sms) = &rendered.sms {
                let cut = if sms.truncated { ", cut to fit" } else { "" };
                println!(
                    "\n--- SMS ({} characters, {} segment(s), {}{cut}) ---\n{}",
                    sms.length, sms.segments, sms.encoding, sms.body
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&rota::http::openapi_document())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Store { command: StoreCommand::Compact { db, config } } => {
            let config = store_config(config)?;
            let db = db.unwrap_or_else(|| config.db.clone());
            sqlite_only(&db, "compact")?;
            let mut store = rota::store::SqliteStore::open(&db)?;
            let now = rota::time::Timestamp(chrono::Utc::now().timestamp_millis());
            let audit = rota::time::Duration::from_secs(i64::from(config.store.audit_days) * 86_400);
            let keep = config.notify.keep_days;
            let notifications_before =
                (keep > 0).then(|| now - rota::time::Duration::from_secs(i64::from(keep) * 86_400));
            let done = store.compact(now, audit, notifications_before)?;
            println!("{}", db.display());
            println!(
                "forgot {} journal records (behind the oldest snapshot, older than {} days) and {} notifications",
                done.journal_records, config.store.audit_days, done.notifications
            );
            println!("size: {} bytes before, {} after", done.bytes_before, done.bytes_after);
            Ok(ExitCode::SUCCESS)
        }
        Command::Store { command: StoreCommand::Info { db, config } } => {
            let db = match db {
                Some(db) => db,
                None => store_config(config)?.db,
            };
            sqlite_only(&db, "info")?;
            let info = rota::store::StoreInfo::read(&db)?;
            let current = rota::store::FORMAT;
            println!("{}", db.display());
            match info.format {
                f if f == current => println!("format: {f} (this rota's)"),
                f if f < current => {
                    println!("format: {f} (older: this rota migrates it to {current} when it opens it)")
                }
                f => println!("format: {f} (newer than this rota's {current}: it will not open it)"),
            }
            let span = match (info.first, info.last) {
                (Some(first), Some(last)) => format!(", {first} to {last}"),
                _ => String::new(),
            };
            println!("journal: {} records{span}", info.journal_records);
            match info.latest_snapshot {
                Some((position, at, bytes)) => {
                    let behind = info.last_position.saturating_sub(position);
                    println!(
                        "latest snapshot: of journal record {position}, taken {at}, {bytes} bytes; a start replays \
                         the {behind} records after it"
                    );
                }
                None => println!("latest snapshot: none; a start replays the whole journal"),
            }
            for (table, rows) in &info.tables {
                println!("  {table}: {rows} rows");
            }
            println!("size: {} bytes", info.file_bytes);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedule { command: ScheduleCommand::Who { schedule, dir, at, scripts } } => {
            let scripts = scripts.unwrap_or(dir);
            let rules = load_rules(&scripts, &rota::script::Limits::default())?;
            let s = rules
                .schedules
                .get(&schedule)
                .with_context(|| format!("no schedule `{schedule}` in {}", scripts.display()))?;
            let at = match at {
                Some(t) => rota::schedule::parse_instant(&t, s.zone)?,
                None => rota::time::Timestamp(chrono::Utc::now().timestamp_millis()),
            };
            match s.on_duty(at) {
                Some(d) => {
                    let local = |t: rota::time::Timestamp| {
                        chrono::DateTime::from_timestamp_millis(t.0)
                            .map(|t| t.with_timezone(&s.zone).format("%Y-%m-%d %H:%M %Z").to_string())
                            .unwrap_or_default()
                    };
                    println!(
                        "{} ({}; since {}, until {})",
                        d.agents.join(", "),
                        d.source,
                        d.since.map(local).unwrap_or("?".into()),
                        d.until.map(local).unwrap_or("?".into())
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    println!("nobody is on duty in `{schedule}` at {at}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Types { dir } => {
            for path in rota::editor::write_types(&dir)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { dir, format, filter, cpu_ms, limits } => {
            let mut options = rota::testing::Options::default();
            options.filter = filter.clone();
            options.cpu_per_case = std::time::Duration::from_millis(cpu_ms);
            options.limits = limits.limits();
            let started = std::time::Instant::now();
            let results =
                rota::testing::run(&dir, &options).with_context(|| format!("cannot read {}", dir.display()))?;
            print!("{}", rota::testing::report::render(format, &results, started.elapsed()));
            let (passed, failed) = rota::testing::report::totals(&results);
            if passed + failed == 0 {
                let files = rota::testing::discover(&dir).map(|f| f.len()).unwrap_or(0);
                match filter {
                    Some(f) if files > 0 => eprintln!(
                        "no test case's name contains `{f}` (in {files} test file(s) under {}; a name is `describe > it`)",
                        dir.display()
                    ),
                    _ => eprintln!("no test cases under {} (tests are *_test.lua files next to the rules)", dir.display()),
                }
            }
            Ok(if failed == 0 && passed > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Check { dir, where_used: None, limits } => match rota::script::check(&dir, &limits.limits()) {
            Ok(rules) => {
                println!(
                    "{}: ok ({} agents, {} teams, {} queues, {} policies, {} presences, {} templates, {} standby rules, {} schedules, {} workflows)",
                    dir.display(),
                    rules.agents.len(),
                    rules.teams.len(),
                    rules.queues.len(),
                    rules.policies.len(),
                    rules.presences.all().count(),
                    rules.templates.ids().count(),
                    rules.standby.len(),
                    rules.schedules.len(),
                    rules.workflows.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                for d in &e.diagnostics {
                    let file = if d.file.starts_with("stdlib/") || d.file.starts_with('<') {
                        d.file.clone()
                    } else {
                        dir.join(&d.file).display().to_string()
                    };
                    match d.line {
                        Some(line) => println!("{file}:{line}: {}", d.message),
                        None => println!("{file}: {}", d.message),
                    }
                }
                eprintln!("{} problem(s) found", e.diagnostics.len());
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Serve { config, listen, db, scripts, log_format } => {
            log_format.install();
            let mut config = match config {
                Some(path) => Config::read(&path)?,
                None if Path::new("rota.toml").exists() => Config::read(Path::new("rota.toml"))?,
                None => Config::default(),
            };
            config.listen = listen.unwrap_or(config.listen);
            config.db = db.unwrap_or(config.db);
            config.scripts = scripts.unwrap_or(config.scripts);
            config.check_exposure()?;
            // Before the database file is made: a server without rules is a mistake.
            let sources = rota::script::Sources::read(&config.scripts);
            if sources.as_ref().map_or(true, |s| s.rules.is_empty()) {
                let why = match sources {
                    Err(e) => e.diagnostics.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; "),
                    Ok(_) => "it holds no rule files (*.lua)".into(),
                };
                anyhow::bail!(
                    "no rules to serve in `{}`: {why}. `rota init {}` writes a small working folder; \
                     --scripts DIR (or `scripts` in rota.toml) names another",
                    config.scripts.display(),
                    config.scripts.display()
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate { scenario, json, limits } => {
            let timeline = rota::scenario::run_file_with(&scenario, limits.limits())
                .with_context(|| format!("simulating {}", scenario.display()))?;
            if json {
                print!("{}", timeline.json_lines());
            } else {
                print!("{}", timeline.text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `rota store` works on SQLite files; a PostgreSQL database has its own tools.
fn sqlite_only(db: &Path, command: &str) -> anyhow::Result<()> {
    if db.to_str().is_some_and(rota::store::is_postgres) {
        anyhow::bail!(
            "`rota store {command}` works on SQLite files; {} is a PostgreSQL database (the server prunes its \
             journal behind snapshots as it runs; use psql or VACUUM for the rest)",
            rota::store::shown(db)
        );
    }
    Ok(())
}

/// Loads a scripts folder for a command that needs its rules, or says why it cannot.
fn load_rules(dir: &Path, limits: &rota::script::Limits) -> anyhow::Result<rota::rules::RuleSet> {
    Ok(rota::script::check(dir, limits)?)
}

/// `rota serve`: replay the store, start the engine, watch the scripts, serve until a signal.
async fn serve(config: Config) -> anyhow::Result<()> {
    // What scripts and the engine report as warnings and errors goes to the server's output
    // too (a dead notification, a memo that could not carry over), not only into the API.
    // What scripts and the engine log, reloads, deliveries and requests are `tracing` events,
    // written by the subscriber `LogFormat::install` set up.
    // The address is taken first: a node standing by answers on it too.
    let listening =
        std::net::TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    listening.set_nonblocking(true)?;
    let addr = listening.local_addr()?;
    let mut config = config;
    config.store.advertise.get_or_insert_with(|| format!("http://{addr}"));
    let builders = stand_by(&config, &listening).await?;

    let (results, mut reloads) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start_partitions(&config, builders, results)?;
    let handle = server.handle().clone();
    let engines = server.engines().clone();
    tokio::spawn(async move {
        // The library logs each reload's outcome itself.
        while reloads.recv().await.is_some() {}
    });
    let status = handle.script_status().await?;
    if let Some(diagnostics) = &status.last_error {
        tracing::warn!("the scripts changed while stopped and were rejected; running the stored generation");
        for d in diagnostics {
            tracing::warn!(target: "rota::scripts", "{d}");
        }
    }

    let (router, closer) = rota::http::router(engines.clone(), &server.api_config());
    let listener = tokio::net::TcpListener::from_std(listening)?;
    println!("rota listening on http://{addr}");
    println!("  console:  http://{addr}/");
    println!("  database: {}", rota::store::shown(&config.db));
    if engines.handles().len() > 1 {
        println!("  partitions: {} (an engine each, this node holding every lease)", engines.handles().len());
    }
    println!("  scripts:  {} (generation {}, watched)", config.scripts.display(), status.generation);
    for hook in &config.webhooks {
        println!("  events:   webhook {} -> {}", hook.name, hook.url);
    }
    for line in &server.channels {
        println!("  {line}");
    }
    if config.tokens_or_dev().1 {
        println!("  no tokens configured: use `Authorization: Bearer {DEV_TOKEN}` (all units)");
    }

    let stopping = async move {
        tokio::select! {
            _ = signal() => tracing::info!("shutting down"),
            // One partition stopping (its lease lost, say) stops the node: it serves all or none.
            end = engines.stopped() => if let Err(why) = end { tracing::error!("{}", rota::error::causes(&why)) },
        }
        closer.close();
    };
    rota::http::serve(listener, router, stopping).await?;
    // Requests in flight are done; stop the engine after the inputs it already has (committed).
    server.stop().await?;
    tracing::info!("stopped; state is in {}", rota::store::shown(&config.db));
    Ok(())
}

/// The engine builders, one per partition, once this node may run them. On PostgreSQL
/// another node may own the database: this node takes each partition's lease in index order
/// (so two nodes never each hold a part, waiting on the other), keeps those it has, and until
/// it has them all stands by, forwarding every API request that reaches `listening` to the
/// owner.
async fn stand_by(config: &Config, listening: &std::net::TcpListener) -> anyhow::Result<Vec<rota::runtime::Builder>> {
    let partitioning = std::sync::Arc::new(config.partitioning()?);
    let mut held = Vec::new();
    let lease = config.lease();
    let api = config.api();
    let owner = rota::http::Owner::default();
    let mut answering: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>)> = None;
    while held.len() < partitioning.count() as usize {
        match Server::partition_builder(config, &partitioning.part(held.len() as u32)) {
            Ok(builder) => held.push(builder),
            Err(rota::server::ServerError::Store(e @ rota::store::StoreError::Leased { .. })) => {
                if let rota::store::StoreError::Leased { owner: node, address, epoch, .. } = &e {
                    let seen = rota::http::Seen { node: node.clone(), address: address.clone(), epoch: *epoch };
                    *owner.write().unwrap_or_else(|e| e.into_inner()) = Some(seen);
                }
                if answering.is_none() {
                    tracing::warn!("{e}");
                    println!("rota standing by on http://{}: {e}", listening.local_addr()?);
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    let listener = tokio::net::TcpListener::from_std(listening.try_clone()?)?;
                    let standby = rota::http::Standby {
                        node: lease.node.clone(),
                        retry_after: lease.duration,
                        body_limit: api.body_limit,
                        timeout: api.timeout,
                    };
                    let router = rota::http::standby_router(owner.clone(), standby);
                    let serving = tokio::spawn(rota::http::serve(listener, router, async move {
                        let _ = stopped.await;
                    }));
                    answering = Some((stop, serving));
                }
                tokio::time::sleep(lease.duration / 4).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some((stop, mut serving)) = answering {
        let _ = stop.send(());
        // Requests still being forwarded (an event stream, an owner paused mid-answer) are cut
        // off after a moment rather than holding up the takeover; their clients ask again.
        match tokio::time::timeout(std::time::Duration::from_secs(1), &mut serving).await {
            Ok(served) => served??,
            Err(_) => serving.abort(),
        }
        tracing::warn!("took the database over");
    }
    Ok(held)
}

/// How `rota serve` writes its log.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    /// One line per event: time, level, target, message and fields.
    Text,
    /// One JSON object per event, for a log collector.
    Json,
}

impl LogFormat {
    /// Sends every `tracing` event the `RUST_LOG` filter (default `info`) lets through to
    /// stderr in this format; stdout keeps the start-up lines.
    fn install(self) {
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        let _ = match self {
            LogFormat::Text => logs.with_ansi(false).try_init(),
            LogFormat::Json => logs.json().flatten_event(true).try_init(),
        };
    }
}

/// Ctrl-C or SIGTERM.
async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The config `rota store` commands read: `--config`, else `rota.toml` when it exists, else
/// the defaults.
fn store_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::read(&path)?,
        None if Path::new("rota.toml").exists() => Config::read(Path::new("rota.toml"))?,
        None => Config::default(),
    })
}
