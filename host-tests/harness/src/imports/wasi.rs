//! The slice of WASI preview 1 that Rust's `wasm32-wasip1` standard library pulls into a
//! proxy-wasm module, written by hand against `HostState`: time from the harness clock,
//! deterministic randomness, an empty environment, stdout and stderr captured as log lines,
//! and `proc_exit` as a trap. There is no file system: every other descriptor is `EBADF`.

use wasmtime::{Caller, Linker};

use crate::guest::{read, write, write_u32, write_u64, Fault};
use crate::state::HostState;

const MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno values used here.
const SUCCESS: u32 = 0;
const EBADF: u32 = 8;
const EFAULT: u32 = 21;
const EINVAL: u32 = 28;
const ENOSYS: u32 = 52;

/// Clock ids of `clock_time_get`.
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;

type C<'a> = Caller<'a, HostState>;

/// The module asked to exit. Carried as the trap's error so the harness can tell an exit from
/// a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcExit(pub u32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "module called `proc_exit` with code {}", self.0)
    }
}

impl std::error::Error for ProcExit {}

/// Maps an import's memory fault to an errno; a trap from inside stays a trap.
fn errno(result: Result<u32, Fault>) -> wasmtime::Result<u32> {
    match result {
        Ok(code) => Ok(code),
        Err(Fault::Status(_)) => Ok(EFAULT),
        Err(Fault::Trap(error)) => Err(error),
    }
}

/// Registers the WASI functions on `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: C<'_>, id: u32, _precision: u64, ret: u32| {
            let clock = &c.data().env.clock;
            let now = match id {
                CLOCK_REALTIME => clock.unix_nanos(),
                CLOCK_MONOTONIC => clock.monotonic_nanos(),
                _ => return Ok(EINVAL),
            };
            errno(write_u64(&mut c, ret, now).map(|()| SUCCESS))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: C<'_>, _id: u32, ret: u32| errno(write_u64(&mut c, ret, 1).map(|()| SUCCESS)),
    )?;
    linker.func_wrap(MODULE, "random_get", |mut c: C<'_>, ptr: u32, len: u32| {
        errno(random_get(&mut c, ptr, len))
    })?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut c: C<'_>, count: u32, size: u32| errno(empty_list_sizes(&mut c, count, size)),
    )?;
    linker.func_wrap(MODULE, "environ_get", |_c: C<'_>, _: u32, _: u32| {
        Ok(SUCCESS)
    })?;
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut c: C<'_>, count: u32, size: u32| errno(empty_list_sizes(&mut c, count, size)),
    )?;
    linker.func_wrap(MODULE, "args_get", |_c: C<'_>, _: u32, _: u32| Ok(SUCCESS))?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: C<'_>, fd: u32, iovs: u32, iovs_len: u32, ret: u32| {
            errno(fd_write(&mut c, fd, iovs, iovs_len, ret))
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |_c: C<'_>, _fd: u32| Ok(EBADF))?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_c: C<'_>, _fd: u32, _offset: i64, _whence: u32, _ret: u32| Ok(EBADF),
    )?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |_c: C<'_>, _fd: u32, _ret: u32| {
        Ok(EBADF)
    })?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |_c: C<'_>, _fd: u32, _ret: u32| Ok(EBADF),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_c: C<'_>, _fd: u32, _ptr: u32, _len: u32| Ok(EBADF),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |_c: C<'_>, _fd: u32, _iovs: u32, _len: u32, _ret: u32| Ok(EBADF),
    )?;
    linker.func_wrap(MODULE, "sched_yield", |_c: C<'_>| Ok(SUCCESS))?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |_c: C<'_>, _in: u32, _out: u32, _n: u32, _ret: u32| Ok(ENOSYS),
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_c: C<'_>, code: u32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ProcExit(code)))
        },
    )?;
    Ok(())
}

fn random_get(c: &mut C<'_>, ptr: u32, len: u32) -> Result<u32, Fault> {
    let len = usize::try_from(len).map_err(|_| Fault::Status(crate::abi::Status::BadArgument))?;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        let word = c.data_mut().next_random().to_le_bytes();
        let take = word.len().min(len - bytes.len());
        bytes.extend_from_slice(word.get(..take).unwrap_or(&[]));
    }
    write(c, ptr, &bytes)?;
    Ok(SUCCESS)
}

fn empty_list_sizes(c: &mut C<'_>, count: u32, size: u32) -> Result<u32, Fault> {
    write_u32(c, count, 0)?;
    write_u32(c, size, 0)?;
    Ok(SUCCESS)
}

/// Gathers the iovecs and appends them to the captured stdout or stderr.
fn fd_write(c: &mut C<'_>, fd: u32, iovs: u32, iovs_len: u32, ret: u32) -> Result<u32, Fault> {
    let stderr = match fd {
        1 => false,
        2 => true,
        _ => return Ok(EBADF),
    };
    let table = read(c, iovs, iovs_len.saturating_mul(8))?;
    let mut written: u32 = 0;
    for iov in table.chunks_exact(8) {
        let (ptr, len) = match (iov.get(0..4), iov.get(4..8)) {
            (Some(ptr), Some(len)) => (le_u32(ptr), le_u32(len)),
            _ => return Ok(EFAULT),
        };
        let bytes = read(c, ptr, len)?;
        c.data_mut().env.logs.write_stream(stderr, &bytes);
        written = written.saturating_add(len);
    }
    write_u32(c, ret, written)?;
    Ok(SUCCESS)
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    for (slot, byte) in word.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    u32::from_le_bytes(word)
}
