//! The `rota` command: check scripts, simulate scenarios.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rota", version, about = "A host for contact-center rules written in Lua")]
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
        #[command(flatten)]
        limits: LimitArgs,
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

/// The sandbox limits of the Lua VM.
#[derive(clap::Args)]
struct LimitArgs {
    /// Memory a policy call may use, in MiB.
    #[arg(long, default_value_t = 64)]
    lua_memory_mib: usize,
    /// CPU time one policy call may use, in milliseconds.
    #[arg(long, default_value_t = 20)]
    lua_cpu_ms: u64,
}

impl LimitArgs {
    fn limits(&self) -> rota::script::Limits {
        rota::script::Limits {
            memory: self.lua_memory_mib * 1024 * 1024,
            cpu_per_call: std::time::Duration::from_millis(self.lua_cpu_ms),
            ..Default::default()
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rota: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { dir, limits } => match rota::script::load(&dir, &limits.limits(), &[], 1) {
            Ok((rules, _)) => {
                println!(
                    "{}: ok ({} agents, {} teams, {} queues, {} policies, {} presences)",
                    dir.display(),
                    rules.agents.len(),
                    rules.teams.len(),
                    rules.queues.len(),
                    rules.policies.len(),
                    rules.presences.all().count()
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
