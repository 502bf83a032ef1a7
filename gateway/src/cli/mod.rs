//! The `gateway` command line: check, compile, explain, run, demo. Every
//! command takes its config the same way: positional, or `--config`
//! (`gateway.yaml` when neither is given).

pub mod demo;
pub mod diff;
pub mod echo;
pub mod explain;
pub mod offline;
mod replace;
pub mod test;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::load::{LoadError, Source, load};
use crate::observe::logging::LogFormat;
use crate::server::{self, RunError, RunOptions, run, start};

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "An HTTP/1.1 and HTTP/2 reverse proxy whose configuration is compiled and checked before it ships"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The gateway's own log level (`RUST_LOG` wins when set)
    #[arg(long, global = true, default_value = "info",
          value_parser = ["error", "warn", "info", "debug", "trace", "off"])]
    log_level: String,
    /// The gateway's own log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate a config; print diagnostics; write nothing
    Check {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        diag: DiagArgs,
    },
    /// Validate a config and write its plan artifact
    Compile {
        #[command(flatten)]
        config: ConfigArg,
        /// Where to write the plan ("-" for stdout); default: CONFIG with extension `.plan.json`
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        diag: DiagArgs,
    },
    /// Show which route, tier, cluster and rule a request to URL would take
    Explain {
        /// `[CONFIG] URL`: the config (default gateway.yaml; omit with --config or --plan) and the URL
        #[arg(required = true, num_args = 1..=2, value_name = "ARGS")]
        config_or_url: Vec<String>,
        /// The config file (instead of a positional CONFIG)
        #[arg(long, conflicts_with = "plan")]
        config: Option<PathBuf>,
        /// Explain against a plan artifact instead of a config
        #[arg(long)]
        plan: Option<PathBuf>,
        /// The request method
        #[arg(long, short = 'X', default_value = "GET")]
        method: String,
        /// A request header, `Name: value` (repeatable)
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A running gateway's admin address: show each upstream's health as it sees it
        #[arg(long, value_name = "ADDR")]
        admin: Option<std::net::SocketAddr>,
    },
    /// Run route assertions offline: lookup, policies, filters, redirects; no network
    Test {
        /// Cases files (YAML)
        #[arg(required = true, value_name = "CASES")]
        cases: Vec<PathBuf>,
        /// The config to test (default: the cases file's `config:`, else gateway.yaml)
        #[arg(long, conflicts_with = "plan")]
        config: Option<PathBuf>,
        /// A plan artifact to test instead of a config
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Results and diagnostics: human, short, json, github, junit (results only)
        #[arg(long, value_parser = ["human", "short", "json", "github", "junit"])]
        format: Option<String>,
        /// Warnings in the config fail the run (exit 1)
        #[arg(long)]
        deny_warnings: bool,
    },
    /// What a rollout changes: routes, traffic shares, and requests that change destination
    Diff {
        /// The config or plan deployed now
        old: PathBuf,
        /// The config or plan to deploy
        new: PathBuf,
        /// Diagnostics and the diff: human, short, json, github, markdown
        #[arg(long, value_parser = ["human", "short", "json", "github", "markdown"])]
        format: Option<String>,
        /// Warnings in either config fail the run (exit 2, as invalid input)
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print the JSON Schema of gateway.yaml (for editors and CI linters)
    Schema,
    /// Serve a config or plan
    Run(RunArgs),
    /// Serve gateway.yaml with built-in echo upstreams on the loopback addresses it names
    Demo(DemoArgs),
}

/// How diagnostics are printed, and whether warnings fail.
#[derive(Args, Clone)]
struct DiagArgs {
    /// Diagnostics: human (the default when stderr is a terminal), short, json, github
    #[arg(long, value_parser = ["human", "short", "json", "github"])]
    format: Option<String>,
    /// Warnings fail the command (exit 1)
    #[arg(long)]
    deny_warnings: bool,
}

impl DiagArgs {
    fn format(&self) -> compiler::report::Format {
        use std::io::IsTerminal as _;
        self.format
            .as_deref()
            .and_then(compiler::report::Format::parse)
            .unwrap_or(if std::io::stderr().is_terminal() {
                compiler::report::Format::Human
            } else {
                compiler::report::Format::Short
            })
    }

    /// Whether summary lines go with the diagnostics (not in machine formats).
    fn summaries(&self) -> bool {
        matches!(
            self.format(),
            compiler::report::Format::Human | compiler::report::Format::Short
        )
    }
}

/// A config file: positional, or `--config`; `gateway.yaml` when neither.
#[derive(Args)]
struct ConfigArg {
    /// The config file (default: gateway.yaml)
    #[arg(value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The config file (same as the positional CONFIG)
    #[arg(long = "config", value_name = "CONFIG", conflicts_with = "config")]
    config_flag: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config
            .clone()
            .or_else(|| self.config_flag.clone())
            .unwrap_or_else(|| PathBuf::from("gateway.yaml"))
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// A plan artifact to serve (instead of a config)
    #[arg(long, conflicts_with_all = ["config", "config_flag"])]
    plan: Option<PathBuf>,
    /// Override the config's listen address
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Override the config's admin listen address
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Worker threads, 1 to 1024 (default: one per core)
    #[arg(long, value_parser = threads_in_range)]
    threads: Option<usize>,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Where the demo serves TLS (HTTP/2 and HTTP/1.1) with a generated
    /// self-signed certificate for `localhost`, when the config has no `tls`
    #[arg(long, default_value = "127.0.0.1:8443")]
    tls_listen: SocketAddr,
    /// No TLS listener of the demo's own
    #[arg(long)]
    no_tls: bool,
}

impl RunArgs {
    fn source(&self) -> Source {
        match &self.plan {
            Some(p) => Source::Plan(p.clone()),
            None => Source::Config(self.config.path()),
        }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            source: self.source(),
            listen: self.listen,
            admin: self.admin,
            threads: self.threads,
        }
    }
}

fn print_load_error(e: &LoadError) {
    match e {
        // Each diagnostic is already a located `error:` line.
        LoadError::Invalid(diags) => {
            eprintln!("{e}");
            let errors = diags.iter().filter(|d| d.severity == compiler::Severity::Error).count();
            eprintln!("error: {errors} error(s); nothing was loaded");
        }
        _ => eprintln!("error: {e}"),
    }
}

/// Prints diagnostics in `format` to stderr.
fn print_diagnostics(diags: &[compiler::Diagnostic], text: &str, format: compiler::report::Format) {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = err.write_all(compiler::report::render(format, d, Some(text)).as_bytes());
    }
}

/// Compiles `config` and prints its diagnostics; `Err` is the exit code of an
/// unreadable file.
fn compile_and_report(config: &std::path::Path, diag: &DiagArgs) -> Result<compiler::Compiled, ExitCode> {
    let compiled = compiler::compile_file(config).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", config.display());
        ExitCode::from(2)
    })?;
    print_diagnostics(&compiled.diagnostics, &compiled.text, diag.format());
    Ok(compiled)
}

/// Whether the compiled config passes: no errors, and no warnings when they are denied.
fn passes(compiled: &compiler::Compiled, diag: &DiagArgs) -> bool {
    compiled.plan.is_some() && !(diag.deny_warnings && compiled.warnings().next().is_some())
}

fn check(config: PathBuf, diag: &DiagArgs) -> ExitCode {
    let compiled = match compile_and_report(&config, diag) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let errors = compiled.errors().count();
    let warnings = compiled.warnings().count();
    let ok = passes(&compiled, diag);
    if diag.summaries() {
        match (&compiled.plan, ok) {
            (Some(plan), true) => eprintln!(
                "{}: ok: {} route(s), {} cluster(s), {} policy(ies), {warnings} warning(s)",
                config.display(),
                plan.routes.len(),
                plan.clusters.len(),
                plan.policies.len()
            ),
            (Some(_), false) => eprintln!("{}: {warnings} warning(s), denied by --deny-warnings", config.display()),
            (None, _) => eprintln!("{}: {errors} error(s), {warnings} warning(s)", config.display()),
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn compile(config: PathBuf, output: Option<PathBuf>, diag: &DiagArgs) -> ExitCode {
    let compiled = match compile_and_report(&config, diag) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (Some(plan), true) = (&compiled.plan, passes(&compiled, diag)) else {
        if diag.summaries() {
            eprintln!(
                "{}: {} error(s), {} warning(s); no plan written",
                config.display(),
                compiled.errors().count(),
                compiled.warnings().count()
            );
        }
        return ExitCode::from(1);
    };
    let bytes = plan::encode(plan, &compiled.source_digest);
    let output = output.unwrap_or_else(|| config.with_extension("plan.json"));
    let written = if output.as_os_str() == "-" {
        std::io::stdout()
            .write_all(&bytes)
            .and_then(|()| std::io::stdout().flush())
    } else {
        replace::replace_file(&output, &bytes)
    };
    if let Err(e) = written {
        eprintln!("error: cannot write {}: {e}", output.display());
        return ExitCode::from(2);
    }
    if output.as_os_str() != "-" && diag.summaries() {
        let digest = plan::decode(&bytes).map(|d| d.digest).unwrap_or_default();
        eprintln!("wrote {} ({digest})", output.display());
    }
    ExitCode::SUCCESS
}

fn explain(
    args: Vec<String>,
    config: Option<PathBuf>,
    plan: Option<PathBuf>,
    method: String,
    headers: Vec<String>,
    admin: Option<std::net::SocketAddr>,
) -> ExitCode {
    let mut parsed = Vec::with_capacity(headers.len());
    for h in &headers {
        match h.split_once(':') {
            Some((n, v)) if http1::is_token(n.trim().as_bytes()) => {
                parsed.push((n.trim().to_owned(), v.trim().to_owned()))
            }
            _ => {
                eprintln!("error: header {h:?} is not `Name: value`");
                return ExitCode::from(2);
            }
        }
    }
    if !http1::is_token(method.as_bytes()) {
        eprintln!("error: {method:?} is not a method");
        return ExitCode::from(2);
    }
    let (source, url) = match (plan, config, args.as_slice()) {
        (Some(p), None, [url]) => (Source::Plan(p), url.clone()),
        (None, Some(c), [url]) => (Source::Config(c), url.clone()),
        (None, None, [url]) => (Source::Config(PathBuf::from("gateway.yaml")), url.clone()),
        (None, None, [config, url]) => (Source::Config(PathBuf::from(config)), url.clone()),
        _ => {
            eprintln!(
                "usage: gateway explain [CONFIG | --config CONFIG | --plan PLAN] URL [-X METHOD] [-H 'Name: value']..."
            );
            return ExitCode::from(2);
        }
    };
    let loaded = match load(&source) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return ExitCode::from(2);
        }
    };
    let live = match admin.map(crate::cli::explain::Live::fetch).transpose() {
        Ok(live) => live,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let request = crate::cli::explain::Request {
        url,
        method,
        headers: parsed,
        live,
    };
    let (report, routed) = match crate::cli::explain::explain(&loaded.router, &request) {
        Ok(r) => r,
        Err(usage) => {
            eprintln!("error: {usage}");
            return ExitCode::from(2);
        }
    };
    print!("{report}");
    if routed { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Loads `source`, printing its diagnostics in `diag`'s format; `Err` is
/// the exit code (2: unreadable or invalid; 1: warnings denied).
fn load_reporting(source: &Source, diag: &DiagArgs) -> Result<crate::load::Loaded, ExitCode> {
    if let Source::Config(path) = source {
        let compiled = compile_and_report(path, diag)?;
        if compiled.plan.is_none() {
            return Err(ExitCode::from(2));
        }
        if diag.deny_warnings && compiled.warnings().next().is_some() {
            return Err(ExitCode::from(1));
        }
    }
    load(source).map_err(|e| {
        if !matches!(e, LoadError::Invalid(_)) {
            eprintln!("error: {e}");
        }
        ExitCode::from(2)
    })
}

fn test(
    files: &[PathBuf],
    config: Option<&PathBuf>,
    plan: Option<&PathBuf>,
    format: Option<&str>,
    deny_warnings: bool,
) -> ExitCode {
    use crate::cli::test as t;
    let diag = DiagArgs {
        format: format.filter(|f| *f != "junit").map(str::to_owned),
        deny_warnings,
    };
    let files = match t::load_all(files, config, plan) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut invalid = false;
    for (_, cases, _) in &files {
        print_diagnostics(&cases.diagnostics, &cases.text, diag.format());
        invalid |= cases
            .diagnostics
            .iter()
            .any(|d| d.severity == compiler::Severity::Error);
    }
    if invalid {
        return ExitCode::from(2);
    }
    let mut verdicts = Vec::new();
    let mut loaded: Vec<(String, crate::load::Loaded)> = Vec::new();
    for (file, cases, source) in &files {
        let key = format!("{source:?}");
        if !loaded.iter().any(|(k, _)| *k == key) {
            match load_reporting(source, &diag) {
                Ok(l) => loaded.push((key.clone(), l)),
                Err(code) => return code,
            }
        }
        let Some((_, l)) = loaded.iter().find(|(k, _)| *k == key) else {
            return ExitCode::from(2);
        };
        match t::run_file(file, cases, l) {
            Ok(v) => verdicts.extend(v),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let failed = verdicts.iter().filter(|v| !v.failures.is_empty()).count();
    let passed = verdicts.len() - failed;
    let report = match format {
        Some("junit") => t::junit(&verdicts),
        Some("json") => t::json(&verdicts),
        Some("github") => t::github(&verdicts) + &format!("{passed} passed, {failed} failed\n"),
        _ => t::lines(&verdicts) + &format!("{passed} passed, {failed} failed\n"),
    };
    let _ = std::io::stdout().write_all(report.as_bytes());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A config or a plan: a plan artifact is a JSON object with `formatVersion`.
fn source_of(path: &std::path::Path) -> Source {
    let head = std::fs::read(path).unwrap_or_default();
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    if head.get(start) == Some(&b'{') && head.windows(15).take(64).any(|w| w == b"\"formatVersion\"") {
        Source::Plan(path.to_path_buf())
    } else {
        Source::Config(path.to_path_buf())
    }
}

fn diff(old: &std::path::Path, new: &std::path::Path, format: Option<&str>, deny_warnings: bool) -> ExitCode {
    let diag = DiagArgs {
        format: format.filter(|f| *f != "markdown").map(str::to_owned),
        deny_warnings,
    };
    let mut routers = Vec::with_capacity(2);
    for path in [old, new] {
        if !path.exists() {
            eprintln!("error: cannot read {}: no such file", path.display());
            return ExitCode::from(2);
        }
        match load_reporting(&source_of(path), &diag) {
            Ok(l) => routers.push(l.router),
            // 2 for an input that cannot be read or is invalid; 1 for
            // warnings denied, as every command says it (SPEC §13), though
            // 1 is also what a difference exits with.
            Err(code) => return code,
        }
    }
    let d = compiler::diff::diff(&routers[0], &routers[1]);
    let out = match format {
        Some("json") => crate::cli::diff::json(&d),
        Some("markdown") => crate::cli::diff::markdown(&d),
        _ => crate::cli::diff::text(&d),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    if d.same_routing() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Parses the command line and runs the command; the binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Run(_) | Command::Demo(_));
    crate::observe::logging::init(&cli.log_level, cli.log_format, serving);
    match cli.command {
        Command::Check { config, diag } => check(config.path(), &diag),
        Command::Compile { config, output, diag } => compile(config.path(), output, &diag),
        Command::Explain {
            config_or_url,
            config,
            plan,
            method,
            headers,
            admin,
        } => explain(config_or_url, config, plan, method, headers, admin),
        Command::Test {
            cases,
            config,
            plan,
            format,
            deny_warnings,
        } => test(&cases, config.as_ref(), plan.as_ref(), format.as_deref(), deny_warnings),
        Command::Diff {
            old,
            new,
            format,
            deny_warnings,
        } => diff(&old, &new, format.as_deref(), deny_warnings),
        Command::Schema => {
            // A closed pipe (`gateway schema | head`) is not an error.
            let _ = writeln!(std::io::stdout(), "{:#}", compiler::schema());
            ExitCode::SUCCESS
        }
        Command::Run(args) => serve(args.options(), false),
        Command::Demo(args) => {
            let mut options = args.run.options();
            if !args.no_tls {
                options.source = demo::with_tls(options.source, args.tls_listen);
            }
            serve(options, true)
        }
    }
}

/// `run`, or with `demo` also echo upstreams on the plan's free loopback
/// upstream addresses.
fn serve(options: RunOptions, demo: bool) -> ExitCode {
    let started = if demo { run_demo(&options) } else { run(options) };
    // What the log queue holds goes out before anything printed below.
    crate::observe::logging::flush();
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Load(e)) => {
            print_load_error(&e);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_demo(options: &RunOptions) -> Result<(), RunError> {
    let loaded = load(&options.source)?;
    let upstreams = demo::free_upstreams(loaded.router.plan());
    let running = start(options)?;
    let plan = running.shared.current.load_full();
    demo::start(&upstreams, plan.router.plan(), running.addr, running.tls_addr)?;
    server::serve(running)
}

/// `--threads`: a worker count from 1 to 1024 (0 would serve nothing).
fn threads_in_range(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a worker count from 1 to 1024")),
    }
}
