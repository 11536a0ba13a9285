//! A trivial proxy-wasm filter for the side-by-side benchmark: a request passes when it carries
//! `x-trivial: yes` and is answered 403 otherwise. It does about the least a filter can do per
//! request (one host call to read a header, one compare), so its cost is the cost of the VM.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TrivialRoot) });
}}

struct TrivialRoot;

impl Context for TrivialRoot {}

impl RootContext for TrivialRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TrivialRequest))
    }
}

struct TrivialRequest;

impl Context for TrivialRequest {}

impl HttpContext for TrivialRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.get_http_request_header("x-trivial").as_deref() == Some("yes") {
            return Action::Continue;
        }
        self.send_http_response(403, vec![], Some(b"trivial filter: x-trivial is not yes\n"));
        Action::Pause
    }
}
