//! Command-line arguments and the commands behind them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Database, Durability, Error, Options, ROOT_EMAIL, Result};

#[derive(Debug, Parser)]
#[command(
    name = "onedb",
    version,
    about = "A multi-tenant graph database of the six-dimension ontology"
)]
pub struct Cli {
    /// The data directory.
    #[arg(
        long,
        global = true,
        env = "ONEDB_DATA",
        default_value = "./onedb-data"
    )]
    pub data: PathBuf,
    /// When a commit is acknowledged: sync (survives power loss) or relaxed
    /// (survives a crash of onedb).
    #[arg(long, global = true, default_value = "sync", value_parser = parse_durability)]
    pub durability: Durability,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarize the data directory: commits, organizations, vocabulary.
    Info,
    /// Check the whole database: keys, indexes, edges, usage.
    Check,
    /// Write a consistent copy of the data directory (online).
    Backup {
        /// Where the copy goes; must not exist yet.
        dir: PathBuf,
    },
    /// Set a person's password (root's by default), read from stdin or
    /// ONEDB_ROOT_PASSWORD.
    Passwd {
        #[arg(long, default_value = ROOT_EMAIL)]
        email: String,
    },
}

fn parse_durability(text: &str) -> std::result::Result<Durability, String> {
    Durability::parse(text).map_err(|e| e.message)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let db = Database::open_with(
        &cli.data,
        Options {
            durability: cli.durability,
        },
    )?;
    let mut out = std::io::stdout().lock();
    match cli.command.unwrap_or(Command::Info) {
        Command::Info => info(&db, &mut out),
        Command::Check => check(&db, &mut out),
        Command::Backup { dir } => {
            db.backup(&dir)?;
            writeln!(out, "backup written to {}", dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Passwd { email } => {
            let password = match std::env::var("ONEDB_ROOT_PASSWORD") {
                Ok(p) if email == ROOT_EMAIL => p,
                _ => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            db.set_password(&email, &password)?;
            writeln!(out, "password of {email} set")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn info(db: &Database, out: &mut impl Write) -> Result<ExitCode> {
    let session = db.local_session()?;
    let txn = session.read()?;
    writeln!(out, "data directory: {}", db.dir().display())?;
    writeln!(out, "commits: {}", db.last_commit()?)?;
    let orgs = txn.orgs()?;
    writeln!(out, "organizations: {}", orgs.len())?;
    for org in orgs {
        writeln!(
            out,
            "  {} ({}, {}, {})",
            org.slug,
            org.name,
            org.plan.as_str(),
            org.status.as_str()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check(db: &Database, out: &mut impl Write) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let report = db.validate()?;
    writeln!(
        out,
        "checked {} keys in {} tenants ({} things, {} connections, {} events) in {:.1?}",
        report.keys,
        report.tenants,
        report.things,
        report.connections,
        report.events,
        started.elapsed()
    )?;
    for problem in &report.problems {
        writeln!(out, "problem: {problem}")?;
    }
    if report.more_problems > 0 {
        writeln!(out, "... and {} more problems", report.more_problems)?;
    }
    if report.is_ok() {
        writeln!(out, "ok")?;
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

impl From<std::fmt::Error> for Error {
    fn from(e: std::fmt::Error) -> Self {
        Error::io(e)
    }
}
