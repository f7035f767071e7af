//! Command-line arguments and the commands behind them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::db::{Database, Options, ROOT_EMAIL, Session};
use crate::error::{Error, Result};
use crate::server::{Limits, TlsFiles, parse_duration};
use crate::storage::{Durability, Store};

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
    /// The storage engine: rocks (the data directory, durable) or memory
    /// (gone at exit; the search indexes still live under --data).
    #[arg(long, global = true, default_value = "rocks", value_parser = parse_store)]
    pub store: Store,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What `onedb load` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadFrom {
    /// A onedb dump (docs/dump-format.md).
    Onedb,
    /// A Convex snapshot export of the original backend's tables.
    Convex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The interactive shell on the data directory (the default command).
    Repl {
        /// Act as this person instead of root.
        #[arg(long = "as", value_name = "EMAIL")]
        as_email: Option<String>,
    },
    /// Run an OQL script statement by statement (`-` reads stdin); stops at
    /// the first error unless --continue.
    Run {
        /// The script, or `-` for standard input.
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Bind $NAME to a JSON value, e.g. --param 'price=39' (repeatable).
        #[arg(long = "param", value_name = "NAME=JSON")]
        params: Vec<String>,
        /// Keep going after a failed statement (the exit status still fails).
        #[arg(long = "continue")]
        keep_going: bool,
        /// Act as this person instead of root.
        #[arg(long = "as", value_name = "EMAIL")]
        as_email: Option<String>,
        /// Show statements done, their rate and the elapsed time on stderr
        /// (only when stderr is a terminal).
        #[arg(long)]
        progress: bool,
    },
    /// Summarize the data directory: commits, organizations, vocabulary.
    Info,
    /// Check the whole database: keys, indexes, edges, usage.
    Check,
    /// Rebuild the search indexes (names and vectors) from the store.
    Reindex,
    /// Write a consistent copy of the data directory. With --server, the
    /// running server takes it (as the platform owner, while it serves).
    Backup {
        /// Where the copy goes; must not exist yet.
        dir: PathBuf,
        /// Ask the server at HOST:PORT that holds the data directory.
        #[arg(long, value_name = "HOST:PORT")]
        server: Option<String>,
        /// Log in to --server as this person (password from ONEDB_PASSWORD
        /// or asked).
        #[arg(long, requires = "server", conflicts_with = "token_file")]
        email: Option<String>,
        /// Log in to --server with an API token read from this file.
        #[arg(long, value_name = "FILE", requires = "server")]
        token_file: Option<PathBuf>,
    },
    /// Write the database, or one org, as JSON lines (docs/dump-format.md)
    /// from one snapshot. Password and token hashes only with
    /// --with-secrets.
    Dump {
        /// Only this org (by slug).
        #[arg(long)]
        org: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Include password hashes and API tokens.
        #[arg(long)]
        with_secrets: bool,
    },
    /// Load a dump (`-` reads stdin) into a data directory that does not
    /// hold its orgs yet: all of it, or nothing and the first bad line.
    Load {
        /// The dump, or `-` for standard input; with `--from convex`, the
        /// export zip.
        file: PathBuf,
        /// What the file is: a onedb dump, or the zip `npx convex export`
        /// writes (docs/migrate-from-convex.md).
        #[arg(long, value_enum, default_value = "onedb")]
        from: LoadFrom,
        /// With `--from convex`: load the valid documents and list the
        /// invalid ones as skipped (without it, nothing loads).
        #[arg(long)]
        skip_invalid: bool,
    },
    /// The workload benchmark (docs/bench.md): a seeded dataset loaded
    /// into a scratch directory (not --data), every workload measured
    /// beside raw RocksDB and checked; exits non-zero on a wrong answer.
    Bench(BenchArgs),
    /// Serve the data directory over TCP (JSON lines, docs/protocol.md)
    /// until SIGINT or SIGTERM. Root's password comes from
    /// ONEDB_ROOT_PASSWORD when set; without one nobody logs in as root.
    Serve(ServeArgs),
    /// The shell on a server (docs/protocol.md) instead of a data
    /// directory: logs in with --email and a password (ONEDB_PASSWORD, or
    /// asked without echo), or with an API token read from --token-file.
    Connect {
        /// The server, HOST:PORT.
        addr: String,
        /// Log in as this person.
        #[arg(
            long,
            conflicts_with = "token_file",
            required_unless_present = "token_file"
        )]
        email: Option<String>,
        /// A file holding an API token's secret (CREATE TOKEN).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Set a person's password (root's by default), read from stdin or
    /// ONEDB_ROOT_PASSWORD.
    Passwd {
        #[arg(long, default_value = ROOT_EMAIL)]
        email: String,
    },
}

/// `onedb serve`'s address and limits (RELIABILITY.md "Limits").
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the bound
    /// address is printed as `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:7606")]
    pub listen: String,
    /// Bytes a request line may have (TOO_LARGE past it, then close).
    #[arg(long, default_value_t = Limits::default().max_line_bytes)]
    pub max_line_bytes: usize,
    /// Time budget of each statement (TIMEOUT past it), e.g. 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration_arg)]
    pub query_timeout: Duration,
    /// Rows a result may have without LIMIT (TOO_LARGE past it).
    #[arg(long, default_value_t = Limits::default().max_rows)]
    pub max_rows: usize,
    /// Close a connection with nothing in flight after this long without
    /// a request.
    #[arg(long, default_value = "300s", value_parser = parse_duration_arg)]
    pub idle_timeout: Duration,
    /// Close a connection that has not authenticated this long after it
    /// opened.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    pub auth_timeout: Duration,
    /// Connections served at once; one more gets an error line and is closed.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Response bytes that may wait for a client that does not read them
    /// before its connection is closed.
    #[arg(long, default_value_t = Limits::default().max_output_bytes)]
    pub max_output_bytes: usize,
    /// Events a subscription's queue holds for a client that reads too
    /// slowly; past it the subscription ends with CANCELLED and last_seq.
    #[arg(long, default_value_t = Limits::default().subscription_queue)]
    pub subscription_queue: usize,
    /// Subscriptions open at once on one connection (LIMIT_REACHED past it).
    #[arg(long, default_value_t = Limits::default().max_subscriptions)]
    pub max_subscriptions: usize,
    /// Serve inside TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    pub fn tls(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_line_bytes: self.max_line_bytes,
            query_timeout: self.query_timeout,
            max_rows: self.max_rows,
            idle_timeout: self.idle_timeout,
            auth_timeout: self.auth_timeout,
            max_connections: self.max_connections,
            max_output_bytes: self.max_output_bytes,
            subscription_queue: self.subscription_queue,
            max_subscriptions: self.max_subscriptions,
            ..Limits::default()
        }
    }
}

fn parse_duration_arg(text: &str) -> std::result::Result<Duration, String> {
    parse_duration(text).map_err(|e| e.message)
}

fn parse_durability(text: &str) -> std::result::Result<Durability, String> {
    Durability::parse(text).map_err(|e| e.message)
}

fn parse_store(text: &str) -> std::result::Result<Store, String> {
    Store::parse(text).map_err(|e| e.message)
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
    if let Some(Command::Connect {
        addr,
        email,
        token_file,
    }) = &cli.command
    {
        return connect(addr, email.as_deref(), token_file.as_deref());
    }
    match &cli.command {
        Some(Command::Dump { .. } | Command::Load { .. }) if cli.store != Store::Rocks => {
            return Err(Error::invalid(
                "onedb dump and load work on the rocks store of --data, not on --store memory, etcd or tikv",
            ));
        }
        Some(Command::Dump {
            org,
            out,
            with_secrets,
        }) => return dump(&cli.data, org.clone(), out.as_deref(), *with_secrets),
        Some(Command::Load {
            file,
            from: LoadFrom::Convex,
            skip_invalid,
        }) => return load_convex(&cli.data, file, *skip_invalid, cli.durability),
        Some(Command::Load {
            skip_invalid: true, ..
        }) => {
            return Err(Error::invalid(
                "--skip-invalid applies to --from convex; a dump loads whole or not at all",
            ));
        }
        Some(Command::Load { file, .. }) => return load(&cli.data, file, cli.durability),
        Some(Command::Bench(args)) => return bench(args),
        Some(Command::Backup {
            dir,
            server: Some(addr),
            email,
            token_file,
        }) => return remote_backup(addr, dir, email.as_deref(), token_file.as_deref()),
        _ => {}
    }
    let reindex = matches!(cli.command, Some(Command::Reindex));
    let started = std::time::Instant::now();
    let mut rebuilding = reindex.then(|| crate::repl::progress::spinner(REBUILDING));
    let db = Database::open_with(
        &cli.data,
        Options {
            durability: cli.durability,
            rebuild_indexes: reindex,
            store: cli.store.clone(),
            ..Default::default()
        },
    )?;
    let mut out = std::io::stdout().lock();
    match cli.command.unwrap_or(Command::Repl { as_email: None }) {
        Command::Info => info(&db, &mut out),
        Command::Repl { as_email } => {
            let session = match as_email {
                Some(email) => db.session_as(&email)?,
                None => db.local_session()?,
            };
            let mut runner = crate::query::run::Runner::new(&session);
            shell(&mut runner, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            format,
            params,
            keep_going,
            as_email,
            progress,
        } => {
            let session = match as_email {
                Some(email) => db.session_as(&email)?,
                None => db.local_session()?,
            };
            let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&file)
                        .map_err(|e| Error::io(format!("{}: {e}", file.display())))?,
                ))
            };
            let script = Script {
                format,
                params: &params,
                keep_going,
                progress,
            };
            run_script_with(&session, input, &script, &mut out)
        }
        Command::Check => check(&db, &mut out),
        Command::Reindex => {
            db.flush_indexes()?;
            drop(rebuilding.take());
            let report = db.check_indexes()?;
            writeln!(
                out,
                "reindexed {} names and {} vectors in {:.1?}",
                report.names,
                report.vectors,
                started.elapsed()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { dir, .. } => {
            db.backup(&dir)?;
            writeln!(out, "backup written to {}", dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            if let Ok(password) = std::env::var("ONEDB_ROOT_PASSWORD") {
                db.set_password(ROOT_EMAIL, &password)?;
            }
            let tls = args.tls();
            crate::server::serve(db, &args.listen, args.limits(), tls.as_ref(), &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Connect { .. }
        | Command::Dump { .. }
        | Command::Load { .. }
        | Command::Bench(_) => Err(Error::invalid(
            "this command runs before the database is opened",
        )),
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

/// What the spinner says while the search indexes are rebuilt.
const REBUILDING: &str = "rebuilding the search indexes";

/// `onedb dump`.
fn dump(
    data: &std::path::Path,
    org: Option<String>,
    out: Option<&std::path::Path>,
    with_secrets: bool,
) -> Result<ExitCode> {
    use crate::transfer::DumpOptions;
    let options = DumpOptions { org, with_secrets };
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .map_err(|e| Error::io(format!("{}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )),
    };
    // The shell's progress bar, drawn only when stderr is a terminal.
    let bar = crate::repl::progress::counter("records dumped");
    let report = crate::transfer::dump(data, &options, &mut sink, &mut |n| bar.set_position(n));
    bar.finish();
    let report = report?;
    sink.flush()?;
    if out.is_some() {
        eprintln!(
            "dumped {} records (commit {})",
            report.records, report.commit
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `onedb bench`'s flags.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Dataset size: XS (10,000 things), S (100,000), M (1,000,000).
    #[arg(long, value_enum, default_value = "S")]
    scale: crate::bench::Scale,
    /// The doors the workloads go through (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "api,oql,tcp")]
    via: Vec<crate::bench::Via>,
    /// Pipelining clients over TCP, and clients of every mixed run.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Also write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The dataset's seed.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Operations per workload and door (default: 500 at XS, 5,000 above).
    #[arg(long)]
    ops: Option<usize>,
    /// Where the scratch directory goes (default: the system's temporary
    /// directory); it is removed at the end.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let options = crate::bench::Options {
        scale: args.scale,
        via: args.via.clone(),
        clients: args.clients,
        seed: args.seed,
        dir: args.dir.clone(),
        ops: args.ops,
    };
    let report = crate::bench::run(&options, &mut |phase| eprintln!("bench: {phase}"))?;
    if let Some(file) = &args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::io(format!("the report as JSON: {e}")))?;
        std::fs::write(file, text + "\n")
            .map_err(|e| Error::io(format!("{}: {e}", file.display())))?;
    }
    report.print(&mut std::io::stdout().lock())?;
    Ok(if report.checks_failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: {} wrong answers", report.checks_failed);
        ExitCode::FAILURE
    })
}

/// `onedb load`: the dump goes in as one step; then the database is
/// opened once, which rebuilds its search indexes from the store.
fn load(
    data: &std::path::Path,
    file: &std::path::Path,
    durability: Durability,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::io::stdin().lock(),
        ))
    } else {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(file).map_err(|e| Error::io(format!("{}: {e}", file.display())))?,
        ))
    };
    let bar = crate::repl::progress::counter("records loaded");
    let report = crate::transfer::load(data, input, &mut |n| bar.set_position(n));
    bar.finish();
    let report = report?;
    let loaded = started.elapsed();
    build_indexes(data, durability)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "loaded {} records ({} orgs: {}) as commit {} in {:.1?}; search indexes built in {:.1?}",
        report.records,
        report.orgs.len(),
        report.orgs.join(", "),
        report.commit,
        loaded,
        started.elapsed() - loaded
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the loaded directory once, which builds its search indexes from
/// the store.
fn build_indexes(data: &std::path::Path, durability: Durability) -> Result<()> {
    let _rebuilding = crate::repl::progress::spinner(REBUILDING);
    let db = Database::open_with(
        data,
        Options {
            durability,
            ..Default::default()
        },
    )?;
    db.flush_indexes()
}

/// `onedb load --from convex`: every invalid document is listed on stderr;
/// without `skip_invalid` they stop the import and nothing is loaded.
fn load_convex(
    data: &std::path::Path,
    file: &std::path::Path,
    skip_invalid: bool,
    durability: Durability,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let bar = crate::repl::progress::counter("documents read");
    let report =
        crate::transfer::convex::import(data, file, skip_invalid, &mut |n| bar.set_position(n));
    bar.finish();
    let report = report?;
    let verb = if report.commit.is_some() {
        "skipped"
    } else {
        "invalid"
    };
    let mut err = std::io::stderr().lock();
    for bad in &report.invalid {
        writeln!(err, "{verb} {}/{}: {}", bad.table, bad.id, bad.reason)?;
    }
    drop(err);
    let Some(commit) = report.commit else {
        return Err(Error::invalid(format!(
            "{} of {} documents are invalid (listed above): nothing was loaded; fix them, or load the rest with --skip-invalid",
            report.invalid.len(),
            report.documents
        )));
    };
    let loaded = started.elapsed();
    build_indexes(data, durability)?;
    writeln!(
        std::io::stdout().lock(),
        "imported {} of {} documents ({} orgs: {}) as commit {commit} in {:.1?}, {} invalid skipped; search indexes built in {:.1?}",
        report.loaded,
        report.documents,
        report.orgs.len(),
        report.orgs.join(", "),
        loaded,
        report.invalid.len(),
        started.elapsed() - loaded
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `onedb backup DIR --server ADDR`: the server takes the copy while it
/// serves (DIR is made absolute here: the server may run elsewhere in the
/// file system tree).
fn remote_backup(
    addr: &str,
    dir: &std::path::Path,
    email: Option<&str>,
    token_file: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let dir = std::path::absolute(dir)?;
    let login = remote_login(email, token_file)?;
    let mut remote = crate::server::client::Remote::connect(addr, &login)?;
    drop(login);
    remote.backup(&dir.to_string_lossy())?;
    writeln!(std::io::stdout(), "backup written to {}", dir.display())?;
    Ok(ExitCode::SUCCESS)
}

/// `onedb connect`: the shell, over TCP.
fn connect(
    addr: &str,
    email: Option<&str>,
    token_file: Option<&std::path::Path>,
) -> Result<ExitCode> {
    use crate::server::client::Remote;
    let login = remote_login(email, token_file)?;
    let mut remote = Remote::connect(addr, &login)?;
    drop(login);
    shell(&mut remote, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// How `connect` and `backup --server` log in: a token file, or an email
/// and its password.
fn remote_login(
    email: Option<&str>,
    token_file: Option<&std::path::Path>,
) -> Result<crate::server::client::Login> {
    use crate::server::client::Login;
    Ok(match (email, token_file) {
        (_, Some(path)) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
            Login::Token(token.trim().to_string())
        }
        (Some(email), None) => Login::Password {
            email: email.to_string(),
            password: read_password(email)?,
        },
        (None, None) => return Err(Error::invalid("log in with --email or --token-file")),
    })
}

/// The shell on `backend`: the line editor on a terminal, else lines of
/// standard input.
fn shell(backend: &mut impl crate::repl::Backend, out: &mut impl Write) -> Result<()> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let history = crate::repl::editor::history_path();
        crate::repl::editor::interactive(backend, history.as_deref())
    } else {
        crate::repl::run(backend, std::io::stdin().lock(), out, false)
    }
}

/// The password of `email`: ONEDB_PASSWORD, or asked on the terminal
/// without echo.
fn read_password(email: &str) -> Result<String> {
    if let Ok(password) = std::env::var("ONEDB_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password(format!("password for {email}: ")).map_err(|e| {
        Error::invalid(format!(
            "cannot ask for a password ({e}): set ONEDB_PASSWORD or use --token-file"
        ))
    })
}

/// `--param NAME=JSON`: a value bound as `$NAME`; text that is not JSON is
/// taken as a string.
pub fn parse_param(text: &str) -> Result<(String, serde_json::Value)> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| Error::invalid(format!("--param takes NAME=JSON, not {text:?}")))?;
    let name = name.trim().trim_start_matches('$');
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(format!(
            "--param name {name:?} must be a word"
        )));
    }
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((name.to_string(), value))
}

/// How `onedb run` runs a script.
pub struct Script<'a> {
    pub format: Format,
    /// `--param NAME=JSON`, each bound as `$NAME`.
    pub params: &'a [String],
    pub keep_going: bool,
    /// A progress bar on stderr (drawn only on a terminal).
    pub progress: bool,
}

/// Runs a script as it streams in, without a progress bar (see
/// `run_script_with`).
pub fn run_script(
    session: &Session,
    input: impl std::io::BufRead,
    format: Format,
    params: &[String],
    keep_going: bool,
    out: &mut impl Write,
) -> Result<ExitCode> {
    let script = Script {
        format,
        params,
        keep_going,
        progress: false,
    };
    run_script_with(session, input, &script, out)
}

/// Runs a script as it streams in; each result is written and flushed as
/// soon as its statement finished (so what was printed was acknowledged).
pub fn run_script_with(
    session: &Session,
    input: impl std::io::BufRead,
    script: &Script<'_>,
    out: &mut impl Write,
) -> Result<ExitCode> {
    use crate::query::{format as fmt, run::Runner, script::ScriptReader};
    let Script {
        format, keep_going, ..
    } = *script;
    let bar = script
        .progress
        .then(|| crate::repl::progress::counter("statements"));
    let mut runner = Runner::new(session);
    for p in script.params {
        let (name, value) = parse_param(p)?;
        runner.set_param(&name, value)?;
    }
    let mut failed = false;
    for statement in ScriptReader::new(input) {
        let (result, text) = match statement {
            Ok(s) => (
                runner
                    .execute(&s.text)
                    .map_err(|e| (s.locate(e.clone()), e)),
                Some(s.text),
            ),
            Err(e) => (Err((e.clone(), e)), None),
        };
        match (result, format) {
            (Ok(outcome), Format::Json) => writeln!(out, "{}", fmt::json_result(&outcome))?,
            (Ok(outcome), Format::Table) => {
                write!(out, "{}", crate::repl::table::table(&outcome, None))?;
            }
            (Err((located, local)), format) => {
                failed = true;
                match format {
                    Format::Json => writeln!(out, "{}", fmt::json_error(&located))?,
                    Format::Table => {
                        // The place in the script; the caret under the statement's own line.
                        let snippet = local
                            .position
                            .zip(text.as_deref())
                            .map(|(p, t)| p.snippet(t));
                        eprint!("{}", fmt::error_text(&located, snippet.as_deref()));
                    }
                }
            }
        }
        out.flush()?;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if failed && !keep_going {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    if runner.in_block() {
        let e = Error::invalid(
            "the script ended inside BEGIN without COMMIT: nothing in the block was committed",
        );
        match format {
            Format::Json => writeln!(out, "{}", fmt::json_error(&e))?,
            Format::Table => eprint!("{}", fmt::error_text(&e, None)),
        }
        failed = true;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
    let indexes = db.check_indexes()?;
    writeln!(
        out,
        "search indexes: {} names, {} vectors",
        indexes.names, indexes.vectors
    )?;
    for problem in &indexes.problems {
        writeln!(out, "problem: {problem}")?;
    }
    if report.is_ok() && indexes.problems.is_empty() {
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
