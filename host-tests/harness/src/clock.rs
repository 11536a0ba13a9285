//! The harness clock. Every time the module can read (`proxy_get_current_time_nanoseconds`,
//! WASI `clock_time_get`) comes from here, and timers fire only when a test moves it, so a run
//! is reproducible to the nanosecond.

const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Wall-clock and monotonic time, both in nanoseconds.
///
/// Wall time may be set backwards (a scenario can replay an older instant); monotonic time only
/// moves forward, and tick deadlines are kept in it so that a backward jump never re-fires them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    unix_nanos: u64,
    monotonic_nanos: u64,
}

impl Default for Clock {
    /// 2025-01-01T00:00:00Z: a fixed, realistic instant rather than the machine's time, so that
    /// a harness nobody set still behaves the same on every run.
    fn default() -> Self {
        Self::at_unix_seconds(1_735_689_600)
    }
}

impl Clock {
    pub fn at_unix_seconds(seconds: u64) -> Self {
        Self {
            unix_nanos: seconds.saturating_mul(NANOS_PER_SECOND),
            monotonic_nanos: 0,
        }
    }

    pub fn unix_nanos(&self) -> u64 {
        self.unix_nanos
    }

    pub fn unix_seconds(&self) -> u64 {
        self.unix_nanos / NANOS_PER_SECOND
    }

    pub fn monotonic_nanos(&self) -> u64 {
        self.monotonic_nanos
    }

    pub fn advance_nanos(&mut self, nanos: u64) {
        self.unix_nanos = self.unix_nanos.saturating_add(nanos);
        self.monotonic_nanos = self.monotonic_nanos.saturating_add(nanos);
    }

    pub fn advance_millis(&mut self, millis: u64) {
        self.advance_nanos(millis.saturating_mul(NANOS_PER_MILLI));
    }

    /// Sets wall time; returns how far it moved forward (zero for a backward move).
    pub fn set_unix_nanos(&mut self, nanos: u64) -> u64 {
        let forward = nanos.saturating_sub(self.unix_nanos);
        self.unix_nanos = nanos;
        forward
    }
}

pub fn millis_to_nanos(millis: u64) -> u64 {
    millis.saturating_mul(NANOS_PER_MILLI)
}

pub fn seconds_to_nanos(seconds: u64) -> u64 {
    seconds.saturating_mul(NANOS_PER_SECOND)
}
