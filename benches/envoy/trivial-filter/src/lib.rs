//! A trivial proxy-wasm filter for the side-by-side benchmark: a request passes when it carries
//! `x-trivial: yes` and is answered 403 otherwise. It does about the least a filter can do per
//! request (one host call to read a header, one compare), so its cost is the cost of the VM.
//!
//! With the plugin configuration `same-host-calls` it then also makes, without deciding anything,
//! the host calls taskgate makes for a request it allows with a cached token: read every request
//! header, read the clock, bump a counter, hand the host a debug line, remove `authorization` and
//! set two identity headers. Its cost over the plain filter is what those calls cost the host, so
//! taskgate's cost splits into the host's share and the module's own.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TrivialRoot::default()) });
}}

#[derive(Default)]
struct TrivialRoot {
    /// The counter bumped per request, when the configuration asks for taskgate's host calls.
    same_host_calls: Option<u32>,
}

impl Context for TrivialRoot {}

impl RootContext for TrivialRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX);
        self.same_host_calls = match config.ok().flatten().as_deref() {
            Some(b"same-host-calls") => {
                Some(hostcalls::define_metric(MetricType::Counter, "trivial.allowed").unwrap_or(0))
            }
            _ => None,
        };
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TrivialRequest {
            same_host_calls: self.same_host_calls,
        }))
    }
}

struct TrivialRequest {
    same_host_calls: Option<u32>,
}

impl Context for TrivialRequest {}

impl HttpContext for TrivialRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.get_http_request_header("x-trivial").as_deref() != Some("yes") {
            self.send_http_response(403, vec![], Some(b"trivial filter: x-trivial is not yes\n"));
            return Action::Pause;
        }
        if let Some(counter) = self.same_host_calls {
            let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
            let _ = hostcalls::get_current_time();
            let _ = hostcalls::increment_metric(counter, 1);
            let line = format!("trivial: {} request headers", headers.len());
            let _ = hostcalls::log(LogLevel::Debug, &line);
            let request = MapType::HttpRequestHeaders;
            let _ = hostcalls::set_map_value(request, "authorization", None);
            let _ = hostcalls::set_map_value(request, "x-taskgate-subject", Some("workload-0999"));
            let _ = hostcalls::set_map_value(request, "x-taskgate-rule", Some("rule-0999"));
        }
        Action::Continue
    }
}
