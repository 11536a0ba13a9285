//! Runs a `wasm32-wasip1` command module inside wasmtime and passes its output through.
//!
//! Only the WASI calls a verification loop makes are real (arguments, environment, stdout and
//! stderr, the monotonic and real-time clocks, randomness, exit); any other import traps, so a
//! module that needs more fails loudly instead of measuring something else.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{bail, format_err, Caller, Engine, Extern, Linker, Memory, Module, Result, Store};

const WASI: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_INVAL: i32 = 28;

struct Host {
    args: Vec<Vec<u8>>,
    started: Instant,
    exit_code: Option<i32>,
}

fn memory(caller: &mut Caller<'_, Host>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => bail!("the module exports no memory"),
    }
}

fn write_bytes(caller: &mut Caller<'_, Host>, at: i32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    memory.write(caller, at as u32 as usize, bytes)?;
    Ok(())
}

fn read_u32(caller: &mut Caller<'_, Host>, at: u32) -> Result<u32> {
    let memory = memory(caller)?;
    let mut word = [0u8; 4];
    memory.read(caller, at as usize, &mut word)?;
    Ok(u32::from_le_bytes(word))
}

fn define_wasi(linker: &mut Linker<Host>) -> Result<()> {
    linker.func_wrap(
        WASI,
        "args_sizes_get",
        |mut caller: Caller<'_, Host>, count: i32, size: i32| -> Result<i32> {
            let args = &caller.data().args;
            let n = args.len() as u32;
            let bytes: u32 = args.iter().map(|arg| arg.len() as u32 + 1).sum();
            write_bytes(&mut caller, count, &n.to_le_bytes())?;
            write_bytes(&mut caller, size, &bytes.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "args_get",
        |mut caller: Caller<'_, Host>, argv: i32, buf: i32| -> Result<i32> {
            let args = caller.data().args.clone();
            let mut cursor = buf as u32;
            for (i, arg) in args.iter().enumerate() {
                write_bytes(&mut caller, argv + 4 * i as i32, &cursor.to_le_bytes())?;
                let mut with_nul = arg.clone();
                with_nul.push(0);
                write_bytes(&mut caller, cursor as i32, &with_nul)?;
                cursor += with_nul.len() as u32;
            }
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "environ_sizes_get",
        |mut caller: Caller<'_, Host>, count: i32, size: i32| -> Result<i32> {
            write_bytes(&mut caller, count, &0u32.to_le_bytes())?;
            write_bytes(&mut caller, size, &0u32.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "environ_get", |_: i32, _: i32| -> i32 {
        ERRNO_SUCCESS
    })?;
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, Host>, fd: i32, iovs: i32, len: i32, written: i32| -> Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let memory = memory(&mut caller)?;
            let mut out = Vec::new();
            for i in 0..len as u32 {
                let base = iovs as u32 + 8 * i;
                let ptr = read_u32(&mut caller, base)? as usize;
                let n = read_u32(&mut caller, base + 4)? as usize;
                let data = memory.data(&caller);
                let chunk = data
                    .get(ptr..ptr + n)
                    .ok_or_else(|| format_err!("fd_write reads outside memory"))?;
                out.extend_from_slice(chunk);
            }
            if fd == 1 {
                std::io::stdout().write_all(&out)?;
            } else {
                std::io::stderr().write_all(&out)?;
            }
            write_bytes(&mut caller, written, &(out.len() as u32).to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, Host>, clock: i32, _precision: i64, at: i32| -> Result<i32> {
            let nanos: u64 = match clock {
                0 => SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64,
                1 => caller.data().started.elapsed().as_nanos() as u64,
                _ => return Ok(ERRNO_INVAL),
            };
            write_bytes(&mut caller, at, &nanos.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, Host>, buf: i32, len: i32| -> Result<i32> {
            // Verification never needs secret randomness; a fixed pattern keeps runs repeatable.
            let bytes: Vec<u8> = (0..len as u32).map(|i| i as u8).collect();
            write_bytes(&mut caller, buf, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |mut caller: Caller<'_, Host>, code: i32| -> Result<()> {
            caller.data_mut().exit_code = Some(code);
            bail!("proc_exit({code})")
        },
    )?;
    Ok(())
}

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let Some(path) = argv.next() else {
        bail!("usage: taskgate-crypto-runner MODULE.wasm [ARGS...]");
    };
    let engine = Engine::default();
    let compiling = Instant::now();
    let module = Module::from_file(&engine, &path)?;
    eprintln!("compiled {path} in {:.2?}", compiling.elapsed());
    let mut linker = Linker::new(&engine);
    define_wasi(&mut linker)?;
    linker.define_unknown_imports_as_traps(&module)?;
    let mut args = vec![b"module".to_vec()];
    args.extend(argv.map(String::into_bytes));
    let host = Host {
        args,
        started: Instant::now(),
        exit_code: None,
    };
    let mut store = Store::new(&engine, host);
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(()),
        Err(_) if store.data().exit_code == Some(0) => Ok(()),
        Err(err) => Err(err),
    }
}
