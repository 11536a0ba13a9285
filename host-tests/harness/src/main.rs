//! `taskgate-harness`: runs the real taskgate module outside Envoy. `run` replays scenario files
//! and prints each decision; `check` tells whether the module accepts a configuration and
//! shows what it logged about it.
//!
//! Exit status: 0 when every case passed (or the configuration was accepted), 1 when a case
//! got another decision than expected (or the configuration was rejected), 2 when the command
//! line, a scenario file, a configuration or the module could not be used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use taskgate_harness::{Harness, HarnessError, LogLevel, Plugin, WasmtimeHost, BUILD_COMMAND};
use taskgate_scenario::{CaseResult, Clock, Report, Suite};

#[derive(Debug, Parser)]
#[command(
    name = "taskgate-harness",
    version,
    about = "Run the taskgate proxy-wasm module in wasmtime"
)]
struct Cli {
    /// The proxy-wasm module to load [default: the workspace's release build]
    #[arg(long, global = true, value_name = "PATH")]
    wasm: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay scenario files through the module and print each decision
    Run {
        /// Print the results as one JSON object
        #[arg(long)]
        json: bool,
        /// Also print everything the module logged
        #[arg(long)]
        logs: bool,
        /// Scenario files (`examples/<job>/scenarios.json`)
        #[arg(required = true, value_name = "SCENARIO_FILE")]
        files: Vec<PathBuf>,
    },
    /// Load the module with a configuration and report whether it accepts it
    Check {
        /// Plugin configuration file (JSON)
        #[arg(value_name = "CONFIG_FILE")]
        config: PathBuf,
    },
}

/// What went wrong before any decision could be compared.
const USAGE_OR_LOAD: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let wasm = cli
        .wasm
        .unwrap_or_else(taskgate_harness::default_module_path);
    let code = match cli.command {
        Command::Run { json, logs, files } => run(&wasm, &files, json, logs),
        Command::Check { config } => check(&wasm, &config),
    };
    ExitCode::from(code)
}

fn load_plugin(wasm: &Path) -> Result<Plugin, u8> {
    Plugin::from_file(wasm).map_err(|error| {
        eprintln!("error: {error}");
        if matches!(error, HarnessError::ReadModule { .. }) {
            eprintln!("hint: build the module with `{BUILD_COMMAND}`, or pass `--wasm PATH`");
        }
        USAGE_OR_LOAD
    })
}

fn run(wasm: &Path, files: &[PathBuf], as_json: bool, show_logs: bool) -> u8 {
    let mut suites: Vec<Suite> = Vec::new();
    for file in files {
        match taskgate_scenario::load_suite(file) {
            Ok(suite) => suites.push(suite),
            Err(error) => {
                eprintln!("error: cannot load scenario file: {error}");
                return USAGE_OR_LOAD;
            }
        }
    }
    let plugin = match load_plugin(wasm) {
        Ok(plugin) => plugin,
        Err(code) => return code,
    };
    let mut host = WasmtimeHost::new(plugin);
    let mut report = Report::default();
    let mut logs = Vec::new();
    for suite in &suites {
        let suite_report =
            taskgate_scenario::run(&mut host, std::slice::from_ref(suite), Clock::Fixed);
        report.results.extend(suite_report.results);
        if let Some(harness) = host.harness() {
            logs.extend(
                harness
                    .logs()
                    .iter()
                    .map(|line| format!("{}: {line}", suite.name)),
            );
        }
    }
    if as_json {
        println!("{}", json_report(&report, host.load_failures()));
    } else {
        print!("{}", report.table());
        for (suite, error) in host.load_failures() {
            eprintln!("error: suite `{suite}`: {error}");
        }
    }
    if show_logs {
        for line in &logs {
            eprintln!("{line}");
        }
    }
    if !host.load_failures().is_empty() {
        USAGE_OR_LOAD
    } else if report.failed() > 0 {
        1
    } else {
        0
    }
}

fn json_report(report: &Report, load_failures: &[(String, String)]) -> String {
    let results: Vec<_> = report.results.iter().map(case_json).collect();
    let failures: Vec<_> = load_failures
        .iter()
        .map(|(suite, error)| json!({ "suite": suite, "error": error }))
        .collect();
    let value = json!({
        "results": results,
        "passed": report.passed(),
        "failed": report.failed(),
        "load_failures": failures,
    });
    value.to_string()
}

fn case_json(result: &CaseResult) -> serde_json::Value {
    let observed = match &result.observed {
        Ok(observed) => json!({ "status": observed.status, "reason": observed.reason }),
        Err(error) => json!({ "error": error }),
    };
    json!({
        "suite": result.suite,
        "case": result.case,
        "request": result.request,
        "expected": { "status": result.expected.status, "reason": result.expected.reason },
        "observed": observed,
        "passed": result.passed(),
        "mismatches": result.mismatches,
    })
}

fn check(wasm: &Path, config_path: &Path) -> u8 {
    let config = match std::fs::read(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: cannot read `{}`: {error}", config_path.display());
            return USAGE_OR_LOAD;
        }
    };
    let plugin = match load_plugin(wasm) {
        Ok(plugin) => plugin,
        Err(code) => return code,
    };
    let mut harness = Harness::with_plugin(plugin);
    let result = harness.configure(&config);
    for line in harness.logs().iter().filter(|l| l.level >= LogLevel::Warn) {
        println!("{line}");
    }
    match result {
        Ok(()) => {
            println!("accepted: `{}`", config_path.display());
            0
        }
        Err(HarnessError::ConfigRejected { .. }) => {
            println!("rejected: `{}`", config_path.display());
            1
        }
        Err(error) => {
            eprintln!("error: {error}");
            USAGE_OR_LOAD
        }
    }
}
