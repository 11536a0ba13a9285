//! Reading and writing the module's linear memory from inside an import. Every pointer and
//! length comes from the module, so every access is bounds-checked and a bad one becomes the
//! ABI's `InvalidMemoryAccess` status, never a host panic. Bytes handed to the module are
//! placed in memory it allocated itself through its exported allocator, as Envoy does.

use wasmtime::Caller;

use crate::abi::Status;
use crate::state::HostState;

/// Why an import could not finish: a status to return to the module, or a trap to raise
/// (the module's own allocator trapped, or the module asked to exit).
#[derive(Debug)]
pub enum Fault {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Fault {
    fn from(status: Status) -> Self {
        Fault::Status(status)
    }
}

/// Turns an import's result into what wasmtime expects: a status code, or a trap.
pub fn finish(result: Result<Status, Fault>) -> wasmtime::Result<u32> {
    match result {
        Ok(status) | Err(Fault::Status(status)) => Ok(status.code()),
        Err(Fault::Trap(error)) => Err(error),
    }
}

pub type Guest<'a, 'b> = &'a mut Caller<'b, HostState>;

fn handles(caller: &Caller<'_, HostState>) -> Result<crate::state::GuestHandles, Fault> {
    caller
        .data()
        .guest
        .clone()
        .ok_or(Fault::Status(Status::InternalFailure))
}

fn range(ptr: u32, len: u32) -> Result<std::ops::Range<usize>, Fault> {
    let start = usize::try_from(ptr).map_err(|_| Status::InvalidMemoryAccess)?;
    let len = usize::try_from(len).map_err(|_| Status::InvalidMemoryAccess)?;
    let end = start.checked_add(len).ok_or(Status::InvalidMemoryAccess)?;
    Ok(start..end)
}

/// Copies `len` bytes at `ptr` out of the module's memory.
pub fn read(caller: Guest<'_, '_>, ptr: u32, len: u32) -> Result<Vec<u8>, Fault> {
    let memory = handles(caller)?.memory;
    let bytes = memory
        .data(&*caller)
        .get(range(ptr, len)?)
        .ok_or(Status::InvalidMemoryAccess)?;
    Ok(bytes.to_vec())
}

/// Reads a UTF-8 string; invalid UTF-8 is the module's error, reported as `BadArgument`.
pub fn read_string(caller: Guest<'_, '_>, ptr: u32, len: u32) -> Result<String, Fault> {
    String::from_utf8(read(caller, ptr, len)?).map_err(|_| Fault::Status(Status::BadArgument))
}

pub fn write(caller: Guest<'_, '_>, ptr: u32, bytes: &[u8]) -> Result<(), Fault> {
    let memory = handles(caller)?.memory;
    let len = u32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    memory
        .data_mut(&mut *caller)
        .get_mut(range(ptr, len)?)
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

pub fn write_u32(caller: Guest<'_, '_>, ptr: u32, value: u32) -> Result<(), Fault> {
    write(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: Guest<'_, '_>, ptr: u32, value: u64) -> Result<(), Fault> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Hands `bytes` to the module: allocates them in its memory and writes the pointer and the
/// size to `ptr_ptr` and `size_ptr`. Empty data is a null pointer and a zero size, which is
/// what Envoy writes and what the SDK expects.
pub fn give(caller: Guest<'_, '_>, bytes: &[u8], ptr_ptr: u32, size_ptr: u32) -> Result<(), Fault> {
    let size = u32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let mut address = 0;
    if size > 0 {
        let allocate = handles(caller)?.allocate;
        address = allocate.call(&mut *caller, size).map_err(Fault::Trap)?;
        if address == 0 {
            return Err(Fault::Status(Status::InternalFailure));
        }
        write(caller, address, bytes)?;
    }
    write_u32(caller, ptr_ptr, address)?;
    write_u32(caller, size_ptr, size)
}
