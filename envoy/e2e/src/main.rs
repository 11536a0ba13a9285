//! `taskgate-envoy`: runs the real taskgate module in a real Envoy and
//! replays the golden scenarios of `examples/` against it.
//!
//! Every server it starts (the echo upstream, one Envoy per suite) listens
//! on 127.0.0.1 with a port picked at run time, and is stopped when the run
//! ends, whether it passed, failed or broke. The whole run is bounded in
//! time; each request is bounded too.

mod bootstrap;
mod client;
mod envoy;
mod host;
mod jwks;
mod raw;
mod report;
mod upstream;
mod validate;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use taskgate_scenario::{load_examples, Clock, PreparedRequest, Suite};

use crate::client::ALLOWED;
use crate::envoy::EnvoyOptions;
use crate::host::EnvoyHost;
use crate::upstream::EchoUpstream;

/// Requests the echo upstream serves beyond two per case, before it stops.
const UPSTREAM_SPARE_REQUESTS: usize = 100;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Run the taskgate module in a real Envoy and replay the golden scenarios"
)]
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Replay every suite and print a table of each decision.
    Demo(RunArgs),
    /// Replay every suite; print failures and a closing `N passed, N failed`.
    Test(RunArgs),
    /// Check Envoy and the echo upstream without the module.
    Smoke(EnvoyArgs),
    /// Check that Envoy and the module accept a user-facing bootstrap.
    Validate(ValidateArgs),
    /// Remote keys against a JWKS server on 127.0.0.1 that the run controls: rotation,
    /// faults, and a flood of made-up `kid`s counted at the server.
    Jwks(JwksArgs),
}

#[derive(Debug, Args)]
struct JwksArgs {
    #[command(flatten)]
    envoy: EnvoyArgs,
    #[command(flatten)]
    module: ModuleArgs,
}

#[derive(Debug, Args)]
struct ModuleArgs {
    /// The taskgate proxy-wasm module.
    #[arg(long, default_value = "target/taskgate.wasm")]
    wasm: PathBuf,
}

impl ModuleArgs {
    /// The module's path, once it is known to exist.
    fn path(&self) -> Result<&Path, String> {
        require_file(&self.wasm, "module", "build it with `scripts/build-module`")?;
        Ok(&self.wasm)
    }
}

#[derive(Debug, Args)]
struct EnvoyArgs {
    /// The Envoy binary (`envoy/install-envoy.sh` installs it).
    #[arg(long, default_value = ".venv/bin/envoy")]
    envoy: PathBuf,
    /// Where bootstraps and Envoy logs are written
    /// [default: `$CARGO_TARGET_DIR/taskgate-envoy`, else `target/taskgate-envoy`].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// How long Envoy may take to become ready, in seconds.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
    /// The most the whole run may take, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    envoy: EnvoyArgs,
    #[command(flatten)]
    module: ModuleArgs,
    /// The folder of example suites (`*/scenarios.json`).
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Run only the suite with this name.
    #[arg(long)]
    suite: Option<String>,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    envoy: EnvoyArgs,
    #[command(flatten)]
    module: ModuleArgs,
    /// The bootstrap to check.
    #[arg(long, default_value = "envoy/envoy.yaml")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Action::Demo(args) => replay(&args, Output::Table),
        Action::Test(args) => replay(&args, Output::Terse),
        Action::Smoke(args) => smoke(&args),
        Action::Validate(args) => check_bootstrap(&args),
        Action::Jwks(args) => remote_keys(&args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Table,
    Terse,
}

/// Replays the suites; `Ok(false)` when any case failed.
fn replay(args: &RunArgs, output: Output) -> Result<bool, String> {
    let deadline = Instant::now() + Duration::from_secs(args.envoy.timeout);
    let wasm = args.module.path()?;
    let options = envoy_options(&args.envoy)?;
    let suites = select(
        load_examples(&args.examples).map_err(|e| e.to_string())?,
        &args.suite,
    )?;
    if output == Output::Table {
        println!("{}", envoy_version(&options.binary));
        println!("module: {}", wasm.display());
    }
    let cases: usize = suites.iter().map(|suite| suite.cases.len()).sum();
    let upstream = EchoUpstream::start(cases * 2 + UPSTREAM_SPARE_REQUESTS)?;
    let mut host = EnvoyHost::new(options, Some(wasm.to_path_buf()), upstream, deadline);
    let report = taskgate_scenario::run(&mut host, &suites, Clock::Wall);
    // Stop Envoy and the upstream before printing, so that nothing outlives
    // the run even if writing the output fails.
    drop(host);
    match output {
        Output::Table => print!("{}", report::table(&report)),
        Output::Terse => print!("{}", report::terse(&report)),
    }
    Ok(report.failed() == 0)
}

/// Keeps the suite named `wanted`, or all of them.
fn select(suites: Vec<Suite>, wanted: &Option<String>) -> Result<Vec<Suite>, String> {
    let Some(wanted) = wanted else {
        return Ok(suites);
    };
    let names: Vec<String> = suites
        .iter()
        .map(|suite| format!("`{}`", suite.name))
        .collect();
    let chosen: Vec<Suite> = suites
        .into_iter()
        .filter(|suite| &suite.name == wanted)
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no suite `{wanted}`; there are {}",
            names.join(", ")
        ));
    }
    Ok(chosen)
}

/// Starts Envoy without the module and checks that a request reaches the
/// echo upstream with its headers.
fn smoke(args: &EnvoyArgs) -> Result<bool, String> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let options = envoy_options(args)?;
    println!("{}", envoy_version(&options.binary));
    let upstream = EchoUpstream::start(UPSTREAM_SPARE_REQUESTS)?;
    let mut host = EnvoyHost::new(options, None, upstream, deadline);
    host.start("smoke", "", None)?;
    let request = PreparedRequest {
        method: "GET".into(),
        host: "api.internal".into(),
        path: "/smoke".into(),
        headers: vec![("x-smoke".into(), "1".into())],
        properties: Default::default(),
        peer: None,
    };
    let observed = host.request(&request)?;
    drop(host);
    let echoed = observed.upstream_header("x-smoke") == Some("1");
    let passed = observed.status == 200 && observed.reason == ALLOWED && echoed;
    println!(
        "{} {}: observed {} {}, upstream saw x-smoke: {echoed}",
        if passed { "ok" } else { "MISMATCH" },
        request.summary(),
        observed.status,
        observed.reason,
    );
    println!("{} passed, {} failed", u8::from(passed), u8::from(!passed));
    Ok(passed)
}

/// Runs the remote-keys checks.
fn remote_keys(args: &JwksArgs) -> Result<bool, String> {
    let deadline = Instant::now() + Duration::from_secs(args.envoy.timeout);
    let wasm = args.module.path()?;
    let options = envoy_options(&args.envoy)?;
    jwks::run(&options, wasm, deadline)
}

/// Validates a user-facing bootstrap with the real module.
fn check_bootstrap(args: &ValidateArgs) -> Result<bool, String> {
    let wasm = args.module.path()?;
    let options = envoy_options(&args.envoy)?;
    let outcome = validate::validate(&options.binary, &args.config, wasm, &options.work_dir);
    match &outcome {
        Ok(()) => println!(
            "ok {}: envoy and the module accept it",
            args.config.display()
        ),
        Err(error) => println!("MISMATCH {error}"),
    }
    let passed = outcome.is_ok();
    println!("{} passed, {} failed", u8::from(passed), u8::from(!passed));
    Ok(passed)
}

fn envoy_options(args: &EnvoyArgs) -> Result<EnvoyOptions, String> {
    require_file(
        &args.envoy,
        "envoy",
        "install it with `envoy/install-envoy.sh`",
    )?;
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("taskgate-envoy"),
    };
    Ok(EnvoyOptions {
        binary: args.envoy.clone(),
        work_dir,
        ready_timeout: Duration::from_secs(args.ready_timeout),
        lifetime: Duration::from_secs(args.timeout),
        concurrency: 1,
    })
}

fn require_file(path: &Path, what: &str, hint: &str) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!("{what} `{}` not found: {hint}", path.display()))
    }
}

/// Envoy's own version line, or why it could not be read.
fn envoy_version(binary: &Path) -> String {
    match Command::new(binary).arg("--version").output() {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            format!("envoy: {}", text.trim())
        }
        Err(error) => format!("envoy: version unknown ({error})"),
    }
}
