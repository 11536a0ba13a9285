//! Everything the module says: `proxy_log` lines with their level, and what it writes to WASI
//! stdout and stderr, cut into lines. Kept in order so a test or the CLI can show it.

use std::fmt;

use crate::abi::LogLevel;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// `proxy_log`.
    Proxy,
    /// WASI `fd_write` to file descriptor 1.
    Stdout,
    /// WASI `fd_write` to file descriptor 2.
    Stderr,
}

/// One line of module output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub source: LogSource,
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            LogSource::Proxy => write!(f, "[{}] {}", self.level, self.message),
            LogSource::Stdout => write!(f, "[stdout] {}", self.message),
            LogSource::Stderr => write!(f, "[stderr] {}", self.message),
        }
    }
}

/// The captured output, plus the unfinished last line of each WASI stream.
#[derive(Debug, Clone, Default)]
pub struct LogBook {
    lines: Vec<LogLine>,
    stdout_tail: Vec<u8>,
    stderr_tail: Vec<u8>,
}

impl LogBook {
    pub fn lines(&self) -> &[LogLine] {
        &self.lines
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn since(&self, start: usize) -> &[LogLine] {
        self.lines.get(start..).unwrap_or(&[])
    }

    pub fn push(&mut self, level: LogLevel, source: LogSource, message: String) {
        self.lines.push(LogLine {
            level,
            source,
            message,
        });
    }

    /// Appends bytes written to stdout (`stderr == false`) or stderr; complete lines become
    /// log lines at info (stdout) or error (stderr).
    pub fn write_stream(&mut self, stderr: bool, bytes: &[u8]) {
        let (tail, level, source) = if stderr {
            (&mut self.stderr_tail, LogLevel::Error, LogSource::Stderr)
        } else {
            (&mut self.stdout_tail, LogLevel::Info, LogSource::Stdout)
        };
        tail.extend_from_slice(bytes);
        while let Some(end) = tail.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = tail.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            self.lines.push(LogLine {
                level,
                source,
                message: text,
            });
        }
    }

    pub fn clear(&mut self) {
        self.lines.clear();
    }
}
