//! One Envoy process: started from a rendered bootstrap, waited on until it
//! is ready, and always stopped, on success, on error and on drop.
//!
//! Envoy picks its own free ports (the bootstrap binds port 0): it writes the
//! admin address to a file, and the listener's port is read from the admin
//! `/listeners` endpoint, so no port is ever guessed. The process runs under
//! coreutils `timeout`, so that even if this program is killed outright, the
//! Envoy it started stops by itself when its lifetime is over.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long to wait between two looks at a starting or stopping Envoy.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a stopped Envoy gets to exit before it is signalled harder.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// The timeout of one call to the admin endpoint.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How many lines of Envoy's log an error shows.
const LOG_TAIL_LINES: usize = 20;

/// Counts the Envoys this process started, to give each its own base id.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// Where and how Envoy runs.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The `envoy` binary.
    pub binary: PathBuf,
    /// Where bootstraps, admin address files and logs are written.
    pub work_dir: PathBuf,
    /// How long Envoy gets to answer `/ready`.
    pub ready_timeout: Duration,
    /// After this, Envoy is stopped by `timeout` whatever this program does.
    pub lifetime: Duration,
    /// Worker threads (`--concurrency`); each runs its own instance of the module.
    pub concurrency: usize,
}

/// A running, ready Envoy.
#[derive(Debug)]
pub struct Envoy {
    process: Process,
    listener: SocketAddr,
}

impl Envoy {
    /// Starts Envoy on `bootstrap` and waits until it is ready; `name` names
    /// its files under the work directory.
    pub fn start(options: &EnvoyOptions, name: &str, bootstrap: &str) -> Result<Self, String> {
        let files = Files::new(&options.work_dir, name)?;
        fs::write(&files.bootstrap, bootstrap)
            .map_err(|error| file_error("write", &files.bootstrap, &error))?;
        let mut process = Process::spawn(options, files)?;
        let admin = process.wait_ready(options.ready_timeout)?;
        let listener = listener_address(&process.agent, admin)
            .map_err(|error| format!("{error}\n{}", process.log_tail()))?;
        Ok(Self { process, listener })
    }

    /// The address that requests are sent to.
    pub fn listener(&self) -> SocketAddr {
        self.listener
    }

    /// Explains a failed request: Envoy's log tail if it has exited, else
    /// where its log is.
    pub fn explain(&mut self, error: &str) -> String {
        match self.process.exit_status() {
            Ok(Some(status)) => format!(
                "{error}: envoy exited ({status})\n{}",
                self.process.log_tail()
            ),
            _ => format!("{error} (envoy log: {})", self.process.files.log.display()),
        }
    }
}

/// The files of one Envoy run.
#[derive(Debug)]
struct Files {
    bootstrap: PathBuf,
    admin_address: PathBuf,
    log: PathBuf,
    /// Envoy's counters as they stood when it was stopped.
    stats: PathBuf,
}

impl Files {
    fn new(work_dir: &Path, name: &str) -> Result<Self, String> {
        fs::create_dir_all(work_dir).map_err(|error| file_error("create", work_dir, &error))?;
        let stem: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let files = Self {
            bootstrap: work_dir.join(format!("{stem}.envoy.yaml")),
            admin_address: work_dir.join(format!("{stem}.admin")),
            log: work_dir.join(format!("{stem}.envoy.log")),
            stats: work_dir.join(format!("{stem}.envoy.stats")),
        };
        // A file left by an earlier run would hand out a dead admin address.
        match fs::remove_file(&files.admin_address) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(file_error("remove", &files.admin_address, &error))
            }
            _ => Ok(files),
        }
    }
}

/// The child process; dropping it stops Envoy.
#[derive(Debug)]
struct Process {
    child: Child,
    files: Files,
    agent: ureq::Agent,
}

impl Process {
    fn spawn(options: &EnvoyOptions, files: Files) -> Result<Self, String> {
        let log =
            File::create(&files.log).map_err(|error| file_error("create", &files.log, &error))?;
        let log_too = log
            .try_clone()
            .map_err(|error| file_error("open", &files.log, &error))?;
        let child = Command::new("timeout")
            .arg("--kill-after=5s")
            .arg(format!("{}s", options.lifetime.as_secs().max(1)))
            .arg(&options.binary)
            .arg("--config-path")
            .arg(&files.bootstrap)
            .arg("--concurrency")
            .arg(options.concurrency.max(1).to_string())
            .arg("--base-id")
            .arg(base_id().to_string())
            .arg("--admin-address-path")
            .arg(&files.admin_address)
            .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
            .stdin(Stdio::null())
            .stdout(log_too)
            .stderr(log)
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot start `{}` under `timeout`: {error}",
                    options.binary.display()
                )
            })?;
        Ok(Self {
            child,
            files,
            agent: admin_agent(),
        })
    }

    /// Waits until the admin endpoint answers `/ready` with 200, and returns
    /// the admin address.
    fn wait_ready(&mut self, timeout: Duration) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                return Err(format!(
                    "envoy exited ({status}) before it was ready\n{}",
                    self.log_tail()
                ));
            }
            if let Some(admin) = self.admin_address() {
                if self.is_ready(admin) {
                    return Ok(admin);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "envoy was not ready after {} s\n{}",
                    timeout.as_secs(),
                    self.log_tail()
                ));
            }
            sleep(POLL_INTERVAL);
        }
    }

    fn exit_status(&mut self) -> Result<Option<ExitStatus>, String> {
        self.child
            .try_wait()
            .map_err(|error| format!("cannot look at the envoy process: {error}"))
    }

    fn admin_address(&self) -> Option<SocketAddr> {
        let text = fs::read_to_string(&self.files.admin_address).ok()?;
        text.trim().parse().ok()
    }

    fn is_ready(&self, admin: SocketAddr) -> bool {
        let url = format!("http://{admin}/ready");
        matches!(self.agent.get(&url).call(), Ok(response) if response.status() == 200)
    }

    /// Keeps Envoy's counters (the module's decisions, TLS handshakes) for
    /// a person looking into a run; a failure to keep them changes nothing.
    fn save_stats(&self, admin: SocketAddr) {
        let url = format!("http://{admin}/stats");
        let stats = self
            .agent
            .get(&url)
            .call()
            .and_then(|mut response| response.body_mut().read_to_string());
        if let Ok(stats) = stats {
            let _ = fs::write(&self.files.stats, stats);
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.files.log).unwrap_or_default();
        format!(
            "--- from {} ---\n{}",
            self.files.log.display(),
            notable_lines(&text, LOG_TAIL_LINES)
        )
    }
}

/// The last `count` warnings and errors of an Envoy log, or its last lines
/// if it has none: the hundreds of info lines at start say nothing.
fn notable_lines(log: &str, count: usize) -> String {
    let notable: Vec<&str> = log
        .lines()
        .filter(|line| {
            ["][warning][", "][error][", "][critical]["]
                .iter()
                .any(|level| line.contains(level))
        })
        .collect();
    let lines = if notable.is_empty() {
        log.lines().collect()
    } else {
        notable
    };
    let start = lines.len().saturating_sub(count);
    lines.get(start..).unwrap_or_default().join("\n")
}

impl Drop for Process {
    fn drop(&mut self) {
        // An Envoy that already exited has been reaped: its pid may belong
        // to another process by now and must not be signalled.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Ask Envoy to quit through its admin endpoint when it has one up;
        // otherwise, or if it does not listen, signal it.
        let asked = self.admin_address().is_some_and(|admin| {
            self.save_stats(admin);
            let url = format!("http://{admin}/quitquitquit");
            self.agent.post(&url).send_empty().is_ok()
        });
        if asked && wait_for_exit(&mut self.child, EXIT_GRACE) {
            return;
        }
        // SIGTERM reaches `timeout`, which passes it on to Envoy; SIGKILL
        // would stop `timeout` alone and leave Envoy running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if wait_for_exit(&mut self.child, EXIT_GRACE) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_exit(child: &mut Child, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        sleep(POLL_INTERVAL);
    }
    false
}

/// Reads the address of the listener named `ingress` from the admin endpoint.
fn listener_address(agent: &ureq::Agent, admin: SocketAddr) -> Result<SocketAddr, String> {
    let url = format!("http://{admin}/listeners?format=json");
    let body = agent
        .get(&url)
        .call()
        .and_then(|mut response| response.body_mut().read_to_string())
        .map_err(|error| format!("cannot read envoy's listeners from `{url}`: {error}"))?;
    parse_listener(&body).ok_or_else(|| format!("envoy lists no `ingress` listener: {body}"))
}

fn parse_listener(body: &str) -> Option<SocketAddr> {
    let value: Value = serde_json::from_str(body).ok()?;
    let status = value
        .get("listener_statuses")?
        .as_array()?
        .iter()
        .find(|status| status.get("name").and_then(Value::as_str) == Some("ingress"))?;
    let socket = status.get("local_address")?.get("socket_address")?;
    let address = socket.get("address")?.as_str()?;
    let port = socket.get("port_value")?.as_u64()?;
    format!("{address}:{port}").parse().ok()
}

fn admin_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(ADMIN_TIMEOUT))
        .build()
        .into()
}

/// A base id of its own for every Envoy, so that runs on the same machine
/// never share Envoy's hot-restart shared memory.
fn base_id() -> u32 {
    let started = STARTED.fetch_add(1, Ordering::Relaxed) % 100;
    (std::process::id() % 10_000_000) * 100 + started
}

fn file_error(verb: &str, path: &Path, error: &std::io::Error) -> String {
    format!("cannot {verb} `{}`: {error}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ingress_port_from_the_admin_listing() {
        let body = r#"{"listener_statuses":[{"name":"ingress","local_address":
            {"socket_address":{"address":"127.0.0.1","port_value":41234}}}]}"#;
        assert_eq!(
            parse_listener(body),
            Some("127.0.0.1:41234".parse().unwrap())
        );
    }

    #[test]
    fn shows_the_errors_of_a_log_rather_than_its_last_lines() {
        let log = "[t][1][info][main] a\n[t][1][critical][wasm] b\n[t][1][info][main] c\n";
        assert_eq!(notable_lines(log, 5), "[t][1][critical][wasm] b");
    }

    #[test]
    fn shows_the_last_lines_of_a_log_without_errors() {
        assert_eq!(notable_lines("a\nb\nc\n", 2), "b\nc");
    }

    #[test]
    fn finds_no_listener_in_an_empty_listing() {
        assert_eq!(parse_listener(r#"{"listener_statuses":[]}"#), None);
    }
}
