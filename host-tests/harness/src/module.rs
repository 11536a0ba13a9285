//! A compiled proxy-wasm module and the linker that satisfies its imports, built once and
//! instantiated as often as the harness reloads, plus the typed handles to the exports the
//! host calls. Compiling is the slow step (about a second for the release module), so a
//! `Plugin` is cheap to clone and share between harnesses.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::{Engine, Instance, Linker, Module, Store, TypedFunc, WasmParams, WasmResults};

use crate::abi::ABI_VERSION_EXPORT;
use crate::error::HarnessError;
use crate::imports;
use crate::state::{GuestHandles, HostState};

/// A compiled module ready to be instantiated.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Compiled>,
}

struct Compiled {
    engine: Engine,
    module: Module,
    linker: Linker<HostState>,
    source: PathBuf,
    /// Imports the host does not implement; they are linked to traps.
    unimplemented: Vec<(String, String)>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Reads and compiles the `.wasm` (or `.wat`) file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, HarnessError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HarnessError::ReadModule {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Compiles a module from binary or text; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: impl AsRef<Path>) -> Result<Self, HarnessError> {
        let source = source.as_ref().to_path_buf();
        let engine = Engine::default();
        let compile_error = |error: wasmtime::Error| HarnessError::Compile {
            path: source.clone(),
            message: format!("{error:#}"),
        };
        let module = Module::new(&engine, bytes).map_err(compile_error)?;
        if module.get_export(ABI_VERSION_EXPORT).is_none() {
            return Err(HarnessError::UnsupportedAbi);
        }
        let mut linker = Linker::new(&engine);
        imports::proxy::add_to_linker(&mut linker).map_err(compile_error)?;
        imports::wasi::add_to_linker(&mut linker).map_err(compile_error)?;
        let unimplemented = unimplemented_imports(&engine, &linker, &module);
        // Imports nobody implemented still link, and trap with their name if ever called.
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(compile_error)?;
        Ok(Self {
            inner: Arc::new(Compiled {
                engine,
                module,
                linker,
                source,
                unimplemented,
            }),
        })
    }

    /// Where the module came from.
    pub fn source(&self) -> &Path {
        &self.inner.source
    }

    /// The `(module, name)` of every import the module declares.
    pub fn imports(&self) -> Vec<(String, String)> {
        self.inner
            .module
            .imports()
            .map(|import| (import.module().to_string(), import.name().to_string()))
            .collect()
    }

    /// The `(module, name)` of every import this host does not implement. Such a module still
    /// loads; calling one of these traps with its name.
    pub fn unimplemented_imports(&self) -> &[(String, String)] {
        &self.inner.unimplemented
    }

    pub(crate) fn new_store(&self, state: HostState) -> Store<HostState> {
        Store::new(&self.inner.engine, state)
    }

    /// Instantiates the module in `store` and looks up the exports the host calls.
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> Result<Exports, HarnessError> {
        let instance = self
            .inner
            .linker
            .instantiate(&mut *store, &self.inner.module)
            .map_err(|error| HarnessError::Instantiate {
                message: format!("{error:#}"),
            })?;
        let exports = Exports::find(&instance, store)?;
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or(HarnessError::MissingExport { name: "memory" })?;
        store.data_mut().guest = Some(GuestHandles {
            memory,
            allocate: exports.allocate.clone(),
        });
        Ok(exports)
    }
}

fn unimplemented_imports(
    engine: &Engine,
    linker: &Linker<HostState>,
    module: &Module,
) -> Vec<(String, String)> {
    // Listing a linker's definitions needs a store; a throwaway one is enough.
    let mut store = Store::new(
        engine,
        HostState::new(Default::default(), Default::default()),
    );
    let defined: std::collections::BTreeSet<(String, String)> = linker
        .iter(&mut store)
        .map(|(module, name, _)| (module.to_string(), name.to_string()))
        .collect();
    module
        .imports()
        .map(|import| (import.module().to_string(), import.name().to_string()))
        .filter(|import| !defined.contains(import))
        .collect()
}

type Stream3 = TypedFunc<(u32, u32, u32), u32>;
type CallResponseFn = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// Typed handles to the module's exports. Only the context constructor and an allocator are
/// required; Envoy treats every other missing callback as "do nothing, continue".
#[derive(Clone)]
pub(crate) struct Exports {
    pub allocate: TypedFunc<u32, u32>,
    pub initialize: Option<TypedFunc<(), ()>>,
    pub start: Option<TypedFunc<(), ()>>,
    pub main: Option<TypedFunc<(u32, u32), u32>>,
    pub context_create: TypedFunc<(u32, u32), ()>,
    pub vm_start: Option<TypedFunc<(u32, u32), u32>>,
    pub configure: Option<TypedFunc<(u32, u32), u32>>,
    pub request_headers: Option<Stream3>,
    pub request_body: Option<Stream3>,
    pub response_headers: Option<Stream3>,
    pub response_body: Option<Stream3>,
    pub http_call_response: Option<CallResponseFn>,
    pub tick: Option<TypedFunc<u32, ()>>,
    pub done: Option<TypedFunc<u32, u32>>,
    pub log: Option<TypedFunc<u32, ()>>,
    pub delete: Option<TypedFunc<u32, ()>>,
}

impl Exports {
    fn find(instance: &Instance, store: &mut Store<HostState>) -> Result<Self, HarnessError> {
        let mut lookup = Lookup { instance, store };
        let allocate = match lookup.optional("proxy_on_memory_allocate")? {
            Some(allocate) => allocate,
            None => lookup.required("malloc")?,
        };
        let initialize = lookup.optional("_initialize")?;
        Ok(Self {
            allocate,
            // `_start` is the entry point of modules built before reactors existed; a module
            // with `_initialize` must not have it called.
            start: match initialize {
                Some(_) => None,
                None => lookup.optional("_start")?,
            },
            initialize,
            main: lookup.optional("main")?,
            context_create: lookup.required("proxy_on_context_create")?,
            vm_start: lookup.optional("proxy_on_vm_start")?,
            configure: lookup.optional("proxy_on_configure")?,
            request_headers: lookup.optional("proxy_on_request_headers")?,
            request_body: lookup.optional("proxy_on_request_body")?,
            response_headers: lookup.optional("proxy_on_response_headers")?,
            response_body: lookup.optional("proxy_on_response_body")?,
            http_call_response: lookup.optional("proxy_on_http_call_response")?,
            tick: lookup.optional("proxy_on_tick")?,
            done: lookup.optional("proxy_on_done")?,
            log: lookup.optional("proxy_on_log")?,
            delete: lookup.optional("proxy_on_delete")?,
        })
    }
}

struct Lookup<'a> {
    instance: &'a Instance,
    store: &'a mut Store<HostState>,
}

impl Lookup<'_> {
    fn optional<P, R>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<TypedFunc<P, R>>, HarnessError>
    where
        P: WasmParams,
        R: WasmResults,
    {
        let Some(func) = self.instance.get_func(&mut *self.store, name) else {
            return Ok(None);
        };
        func.typed::<P, R>(&*self.store)
            .map(Some)
            .map_err(|error| HarnessError::ExportSignature {
                name,
                message: format!("{error:#}"),
            })
    }

    fn required<P, R>(&mut self, name: &'static str) -> Result<TypedFunc<P, R>, HarnessError>
    where
        P: WasmParams,
        R: WasmResults,
    {
        self.optional(name)?
            .ok_or(HarnessError::MissingExport { name })
    }
}
