//! The `env.proxy_*` functions of ABI 0.2.1, one Rust function per import, each reading its
//! arguments out of module memory, acting on `HostState`, and answering with the status Envoy
//! answers in the same case. Calls the SDK treats as impossible (it panics on any status but
//! `Ok`) still get Envoy's status, so a module bug shows up here as the same trap it would
//! cause in Envoy.

use wasmtime::{Caller, Linker};

use crate::abi::{decode_map, BufferType, LogLevel, MapType, MetricType, Status, StreamType};
use crate::callout::{CalloutRecord, PendingCallout};
use crate::exchange::{LocalResponse, Response};
use crate::guest::{finish, give, read, read_string, write_u32, write_u64, Fault, Guest};
use crate::headers::HeaderMap;
use crate::logs::LogSource;
use crate::properties::{dotted_path, Layers};
use crate::state::{HostState, Tick};

type Outcome = Result<Status, Fault>;

/// Registers every `env.proxy_*` import on `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_logging_and_time(linker)?;
    add_buffers_and_maps(linker)?;
    add_properties_and_shared(linker)?;
    add_stream_control(linker)?;
    add_calls(linker)?;
    add_metrics(linker)?;
    Ok(())
}

type C<'a> = Caller<'a, HostState>;

fn add_logging_and_time(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: u32, ptr: u32, len: u32| finish(log(&mut c, level, ptr, len)),
    )?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: C<'_>, ret: u32| {
        let level = c.data().env.log_level.code();
        finish(write_u32(&mut c, ret, level).map(|()| Status::Ok))
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: u32| {
            let now = c.data().env.clock.unix_nanos();
            finish(write_u64(&mut c, ret, now).map(|()| Status::Ok))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: u32| {
            set_tick_period(c.data_mut(), ms);
            Ok(Status::Ok.code())
        },
    )?;
    Ok(())
}

fn add_buffers_and_maps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, kind: u32, start: u32, max: u32, ret_ptr: u32, ret_size: u32| {
            finish(get_buffer_bytes(
                &mut c, kind, start, max, ret_ptr, ret_size,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, kind: u32, start: u32, size: u32, ptr: u32, len: u32| {
            finish(set_buffer_bytes(&mut c, kind, start, size, ptr, len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, kind: u32, ret_ptr: u32, ret_size: u32| {
            finish(get_map_pairs(&mut c, kind, ret_ptr, ret_size))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, kind: u32, ptr: u32, len: u32| finish(set_map_pairs(&mut c, kind, ptr, len)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>, kind: u32, key: u32, key_len: u32, ret_ptr: u32, ret_size: u32| {
            finish(get_map_value(&mut c, kind, key, key_len, ret_ptr, ret_size))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, kind: u32, key: u32, key_len: u32| {
            finish(edit_map(&mut c, kind, key, key_len, None, MapEdit::Remove))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: C<'_>, kind: u32, key: u32, key_len: u32, value: u32, value_len: u32| {
            let value = Some((value, value_len));
            finish(edit_map(
                &mut c,
                kind,
                key,
                key_len,
                value,
                MapEdit::Replace,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: C<'_>, kind: u32, key: u32, key_len: u32, value: u32, value_len: u32| {
            let value = Some((value, value_len));
            finish(edit_map(&mut c, kind, key, key_len, value, MapEdit::Add))
        },
    )?;
    Ok(())
}

fn add_properties_and_shared(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, path: u32, path_len: u32, ret_ptr: u32, ret_size: u32| {
            finish(get_property(&mut c, path, path_len, ret_ptr, ret_size))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, path: u32, path_len: u32, value: u32, value_len: u32| {
            finish(set_property(&mut c, path, path_len, value, value_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>, key: u32, key_len: u32, ret_ptr: u32, ret_size: u32, ret_cas: u32| {
            finish(get_shared_data(
                &mut c, key, key_len, ret_ptr, ret_size, ret_cas,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, key: u32, key_len: u32, value: u32, value_len: u32, cas: u32| {
            finish(set_shared_data(&mut c, key, key_len, value, value_len, cas))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C<'_>, name: u32, name_len: u32, ret_id: u32| {
            finish(register_queue(&mut c, name, name_len, ret_id))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, _vm: u32, _vm_len: u32, name: u32, name_len: u32, ret_id: u32| {
            finish(resolve_queue(&mut c, name, name_len, ret_id))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: u32, ret_ptr: u32, ret_size: u32| {
            finish(dequeue(&mut c, id, ret_ptr, ret_size))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: u32, value: u32, value_len: u32| {
            finish(enqueue(&mut c, id, value, value_len))
        },
    )?;
    Ok(())
}

fn add_stream_control(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", |mut c: C<'_>, kind: u32| {
        finish(continue_stream(c.data_mut(), kind))
    })?;
    linker.func_wrap("env", "proxy_close_stream", |mut c: C<'_>, _kind: u32| {
        let status = match c.data_mut().stream_mut() {
            Some(stream) => {
                stream.closed = true;
                Status::Ok
            }
            None => Status::NotFound,
        };
        Ok(status.code())
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: u32,
         details: u32,
         details_len: u32,
         body: u32,
         body_len: u32,
         headers: u32,
         headers_len: u32,
         grpc_status: i32| {
            let parts = LocalParts {
                status,
                details: (details, details_len),
                body: (body, body_len),
                headers: (headers, headers_len),
                grpc_status,
            };
            finish(send_local_response(&mut c, parts))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: u32| {
            let state = c.data_mut();
            let known = id == state.vm.root_id || state.vm.streams.contains_key(&id);
            let status = if known {
                state.vm.effective_context = id;
                Status::Ok
            } else {
                Status::BadArgument
            };
            Ok(status.code())
        },
    )?;
    linker.func_wrap("env", "proxy_done", |_c: C<'_>| Ok(Status::Ok.code()))?;
    Ok(())
}

fn add_calls(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         upstream: u32,
         upstream_len: u32,
         headers: u32,
         headers_len: u32,
         body: u32,
         body_len: u32,
         _trailers: u32,
         _trailers_len: u32,
         timeout_ms: u32,
         ret_token: u32| {
            let call = CallParts {
                upstream: (upstream, upstream_len),
                headers: (headers, headers_len),
                body: (body, body_len),
                timeout_ms,
                ret_token,
            };
            finish(http_call(&mut c, call))
        },
    )?;
    // No gRPC upstream exists in this harness: calls fail the way Envoy fails a call to a
    // cluster it cannot reach, and operations on unknown tokens find nothing.
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |_c: C<'_>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32| Ok(Status::InternalFailure.code()),
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_c: C<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| {
            Ok(Status::InternalFailure.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |_c: C<'_>, _: u32, _: u32, _: u32, _: u32| Ok(Status::NotFound.code()),
    )?;
    linker.func_wrap("env", "proxy_grpc_cancel", |_c: C<'_>, _: u32| {
        Ok(Status::NotFound.code())
    })?;
    linker.func_wrap("env", "proxy_grpc_close", |_c: C<'_>, _: u32| {
        Ok(Status::NotFound.code())
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: C<'_>, ret_code: u32, ret_ptr: u32, ret_size: u32| {
            finish(get_status(&mut c, ret_code, ret_ptr, ret_size))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_c: C<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| Ok(Status::NotFound.code()),
    )?;
    Ok(())
}

fn add_metrics(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, kind: u32, name: u32, name_len: u32, ret_id: u32| {
            finish(define_metric(&mut c, kind, name, name_len, ret_id))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: u32, ret: u32| {
            let value = c.data().env.metrics.get(id);
            finish(match value {
                Some(value) => write_u64(&mut c, ret, value).map(|()| Status::Ok),
                None => Ok(Status::NotFound),
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: u32, value: u64| Ok(c.data_mut().env.metrics.record(id, value).code()),
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: u32, offset: i64| {
            Ok(c.data_mut().env.metrics.increment(id, offset).code())
        },
    )?;
    Ok(())
}

fn log(c: Guest<'_, '_>, level: u32, ptr: u32, len: u32) -> Outcome {
    let level = LogLevel::from_code(level);
    if level < c.data().env.log_level {
        return Ok(Status::Ok);
    }
    let message = String::from_utf8_lossy(&read(c, ptr, len)?).into_owned();
    c.data_mut().env.logs.push(level, LogSource::Proxy, message);
    Ok(Status::Ok)
}

fn set_tick_period(state: &mut HostState, millis: u32) {
    let period_nanos = crate::clock::millis_to_nanos(u64::from(millis));
    state.vm.tick = (period_nanos > 0).then(|| Tick {
        period_nanos,
        due_nanos: state
            .env
            .clock
            .monotonic_nanos()
            .saturating_add(period_nanos),
    });
}

fn buffer(state: &HostState, kind: BufferType) -> Option<&[u8]> {
    let stream = state.stream();
    match kind {
        BufferType::PluginConfiguration => Some(&state.vm.plugin_configuration),
        BufferType::VmConfiguration => Some(&state.vm.vm_configuration),
        BufferType::HttpRequestBody => stream.map(|s| s.request_body.as_slice()),
        BufferType::HttpResponseBody => stream.map(|s| s.response_body.as_slice()),
        BufferType::HttpCallResponseBody => state
            .vm
            .call_response
            .as_ref()
            .map(|response| response.body.as_slice()),
        BufferType::Unsupported => None,
    }
}

fn get_buffer_bytes(
    c: Guest<'_, '_>,
    kind: u32,
    start: u32,
    max: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Outcome {
    let kind = BufferType::from_code(kind).ok_or(Status::BadArgument)?;
    let bytes = buffer(c.data(), kind).ok_or(Status::NotFound)?;
    let start = usize::try_from(start).map_err(|_| Status::BadArgument)?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let end = start.saturating_add(max).min(bytes.len());
    let slice = bytes.get(start..end).ok_or(Status::BadArgument)?.to_vec();
    give(c, &slice, ret_ptr, ret_size)?;
    Ok(Status::Ok)
}

fn set_buffer_bytes(
    c: Guest<'_, '_>,
    kind: u32,
    start: u32,
    size: u32,
    ptr: u32,
    len: u32,
) -> Outcome {
    let kind = BufferType::from_code(kind).ok_or(Status::BadArgument)?;
    let data = read(c, ptr, len)?;
    let stream = c.data_mut().stream_mut().ok_or(Status::NotFound)?;
    let body = match kind {
        BufferType::HttpRequestBody => &mut stream.request_body,
        BufferType::HttpResponseBody => &mut stream.response_body,
        _ => return Err(Status::BadArgument.into()),
    };
    let start = usize::try_from(start).map_err(|_| Status::BadArgument)?;
    let size = usize::try_from(size).map_err(|_| Status::BadArgument)?;
    // Envoy's rules: (0, 0) prepends, (0, >= len) replaces, (>= len, _) appends; nothing else.
    if start == 0 && size == 0 {
        body.splice(0..0, data);
    } else if start == 0 && size >= body.len() {
        *body = data;
    } else if start >= body.len() {
        body.extend_from_slice(&data);
    } else {
        return Err(Status::BadArgument.into());
    }
    Ok(Status::Ok)
}

static EMPTY_MAP: HeaderMap = HeaderMap::new();

fn map(state: &HostState, kind: MapType) -> Option<&HeaderMap> {
    if let MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers = kind {
        let response = state.vm.call_response.as_ref()?;
        return Some(match kind {
            MapType::HttpCallResponseHeaders => &response.headers,
            _ => &response.trailers,
        });
    }
    if kind == MapType::GrpcMetadata {
        return Some(&EMPTY_MAP);
    }
    let stream = state.stream()?;
    Some(match kind {
        MapType::RequestHeaders => &stream.request_headers,
        MapType::RequestTrailers => &stream.request_trailers,
        MapType::ResponseHeaders => &stream.response_headers,
        _ => &stream.response_trailers,
    })
}

fn map_mut(state: &mut HostState, kind: MapType) -> Option<&mut HeaderMap> {
    let stream = state.stream_mut()?;
    match kind {
        MapType::RequestHeaders => Some(&mut stream.request_headers),
        MapType::RequestTrailers => Some(&mut stream.request_trailers),
        MapType::ResponseHeaders => Some(&mut stream.response_headers),
        MapType::ResponseTrailers => Some(&mut stream.response_trailers),
        _ => None,
    }
}

fn get_map_pairs(c: Guest<'_, '_>, kind: u32, ret_ptr: u32, ret_size: u32) -> Outcome {
    let kind = MapType::from_code(kind).ok_or(Status::BadArgument)?;
    // Outside a stream there is no such map; an empty one is what the module can handle.
    let bytes = crate::abi::encode_map(map(c.data(), kind).unwrap_or(&EMPTY_MAP).pairs());
    give(c, &bytes, ret_ptr, ret_size)?;
    Ok(Status::Ok)
}

fn set_map_pairs(c: Guest<'_, '_>, kind: u32, ptr: u32, len: u32) -> Outcome {
    let kind = MapType::from_code(kind).ok_or(Status::BadArgument)?;
    let bytes = read(c, ptr, len)?;
    let pairs = decode_map(&bytes)
        .ok_or(Status::SerializationFailure)?
        .into_iter()
        .map(|(key, value)| {
            (
                String::from_utf8_lossy(&key).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    let target = map_mut(c.data_mut(), kind).ok_or(Status::BadArgument)?;
    target.set_pairs(pairs);
    Ok(Status::Ok)
}

fn get_map_value(
    c: Guest<'_, '_>,
    kind: u32,
    key: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Outcome {
    let kind = MapType::from_code(kind).ok_or(Status::BadArgument)?;
    let key = read_string(c, key, key_len)?;
    let value = map(c.data(), kind)
        .and_then(|map| map.get(&key))
        .ok_or(Status::NotFound)?
        .as_bytes()
        .to_vec();
    give(c, &value, ret_ptr, ret_size)?;
    Ok(Status::Ok)
}

#[derive(Debug, Clone, Copy)]
enum MapEdit {
    Add,
    Replace,
    Remove,
}

fn edit_map(
    c: Guest<'_, '_>,
    kind: u32,
    key: u32,
    key_len: u32,
    value: Option<(u32, u32)>,
    edit: MapEdit,
) -> Outcome {
    let kind = MapType::from_code(kind).ok_or(Status::BadArgument)?;
    let key = read_string(c, key, key_len)?;
    let value = match value {
        Some((ptr, len)) => String::from_utf8_lossy(&read(c, ptr, len)?).into_owned(),
        None => String::new(),
    };
    let target = map_mut(c.data_mut(), kind).ok_or(Status::BadArgument)?;
    match edit {
        MapEdit::Add => target.add(&key, value),
        MapEdit::Replace => target.replace(&key, value),
        MapEdit::Remove => target.remove(&key),
    }
    Ok(Status::Ok)
}

fn get_property(
    c: Guest<'_, '_>,
    path: u32,
    path_len: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Outcome {
    let name = dotted_path(&read(c, path, path_len)?);
    let state = c.data();
    let stream = state.stream();
    let layers = Layers {
        set_by_module: Some(stream.map_or(&state.vm.set_properties, |s| &s.set_properties)),
        request: stream.map(|s| &s.properties),
        headers: stream.map(|s| &s.request_headers),
        plugin: &state.vm.plugin_properties,
        defaults: &state.env.default_properties,
    };
    let value = layers.lookup(&name).ok_or(Status::NotFound)?;
    give(c, &value, ret_ptr, ret_size)?;
    Ok(Status::Ok)
}

fn set_property(c: Guest<'_, '_>, path: u32, path_len: u32, value: u32, value_len: u32) -> Outcome {
    let name = dotted_path(&read(c, path, path_len)?);
    let value = read(c, value, value_len)?;
    let state = c.data_mut();
    let target = match state.vm.streams.get_mut(&state.vm.effective_context) {
        Some(stream) => &mut stream.set_properties,
        None => &mut state.vm.set_properties,
    };
    target.insert(name, value);
    Ok(Status::Ok)
}

fn get_shared_data(
    c: Guest<'_, '_>,
    key: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_size: u32,
    ret_cas: u32,
) -> Outcome {
    let key = read_string(c, key, key_len)?;
    let (value, cas) = c.data().env.shared_data.get(&key).ok_or(Status::NotFound)?;
    give(c, &value, ret_ptr, ret_size)?;
    write_u32(c, ret_cas, cas)?;
    Ok(Status::Ok)
}

fn set_shared_data(
    c: Guest<'_, '_>,
    key: u32,
    key_len: u32,
    value: u32,
    value_len: u32,
    cas: u32,
) -> Outcome {
    let key = read_string(c, key, key_len)?;
    let value = read(c, value, value_len)?;
    Ok(c.data().env.shared_data.set(&key, value, cas))
}

fn register_queue(c: Guest<'_, '_>, name: u32, name_len: u32, ret_id: u32) -> Outcome {
    let name = read_string(c, name, name_len)?;
    let id = c.data_mut().env.queues.register(&name);
    write_u32(c, ret_id, id)?;
    Ok(Status::Ok)
}

fn resolve_queue(c: Guest<'_, '_>, name: u32, name_len: u32, ret_id: u32) -> Outcome {
    let name = read_string(c, name, name_len)?;
    let id = c.data().env.queues.resolve(&name).ok_or(Status::NotFound)?;
    write_u32(c, ret_id, id)?;
    Ok(Status::Ok)
}

fn dequeue(c: Guest<'_, '_>, id: u32, ret_ptr: u32, ret_size: u32) -> Outcome {
    let value = c.data_mut().env.queues.dequeue(id)?;
    give(c, &value, ret_ptr, ret_size)?;
    Ok(Status::Ok)
}

fn enqueue(c: Guest<'_, '_>, id: u32, value: u32, value_len: u32) -> Outcome {
    let value = read(c, value, value_len)?;
    Ok(c.data_mut().env.queues.enqueue(id, value))
}

fn continue_stream(state: &mut HostState, kind: u32) -> Outcome {
    let stream = state.stream_mut().ok_or(Status::NotFound)?;
    if StreamType::from_code(kind) == StreamType::HttpRequest {
        stream.request_resumed = true;
    }
    Ok(Status::Ok)
}

#[derive(Debug, Clone, Copy)]
struct LocalParts {
    status: u32,
    details: (u32, u32),
    body: (u32, u32),
    headers: (u32, u32),
    grpc_status: i32,
}

fn send_local_response(c: Guest<'_, '_>, parts: LocalParts) -> Outcome {
    let details = String::from_utf8_lossy(&read(c, parts.details.0, parts.details.1)?).into_owned();
    let body = read(c, parts.body.0, parts.body.1)?;
    let header_bytes = read(c, parts.headers.0, parts.headers.1)?;
    let headers = decode_map(&header_bytes)
        .ok_or(Status::SerializationFailure)?
        .into_iter()
        .map(|(key, value)| {
            (
                String::from_utf8_lossy(&key).to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    let status = u16::try_from(parts.status).map_err(|_| Status::BadArgument)?;
    let stream = c.data_mut().stream_mut().ok_or(Status::NotFound)?;
    stream.local_response = Some(LocalResponse {
        response: Response {
            status,
            headers,
            body,
        },
        details,
        grpc_status: parts.grpc_status,
    });
    Ok(Status::Ok)
}

#[derive(Debug, Clone, Copy)]
struct CallParts {
    upstream: (u32, u32),
    headers: (u32, u32),
    body: (u32, u32),
    timeout_ms: u32,
    ret_token: u32,
}

fn http_call(c: Guest<'_, '_>, call: CallParts) -> Outcome {
    let upstream = read_string(c, call.upstream.0, call.upstream.1)?;
    let header_bytes = read(c, call.headers.0, call.headers.1)?;
    let headers: Vec<(String, String)> = decode_map(&header_bytes)
        .ok_or(Status::SerializationFailure)?
        .into_iter()
        .map(|(key, value)| {
            (
                String::from_utf8_lossy(&key).to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    // Envoy refuses a call without these three pseudo-headers before it reaches any cluster.
    for required in [":method", ":path", ":authority"] {
        if !headers.iter().any(|(key, _)| key == required) {
            return Err(Status::BadArgument.into());
        }
    }
    let body = read(c, call.body.0, call.body.1)?;
    let state = c.data_mut();
    let reply = state
        .env
        .callouts
        .next_reply(&upstream)
        .ok_or(Status::BadArgument)?;
    state.vm.next_token = state.vm.next_token.wrapping_add(1).max(1);
    let token = state.vm.next_token;
    let context_id = state.vm.effective_context;
    state.vm.pending_callouts.push_back(PendingCallout {
        token,
        context_id,
        timeout_ms: call.timeout_ms,
        reply,
    });
    state.env.callout_log.push(CalloutRecord {
        token,
        context_id,
        upstream,
        headers,
        body,
        timeout_ms: call.timeout_ms,
    });
    write_u32(c, call.ret_token, token)?;
    Ok(Status::Ok)
}

fn get_status(c: Guest<'_, '_>, ret_code: u32, ret_ptr: u32, ret_size: u32) -> Outcome {
    // Only meaningful inside gRPC callbacks, which this host never makes.
    write_u32(c, ret_code, 0)?;
    give(c, &[], ret_ptr, ret_size)?;
    Ok(Status::Ok)
}

fn define_metric(c: Guest<'_, '_>, kind: u32, name: u32, name_len: u32, ret_id: u32) -> Outcome {
    let kind = MetricType::from_code(kind).ok_or(Status::BadArgument)?;
    let name = read_string(c, name, name_len)?;
    let id = c.data_mut().env.metrics.define(kind, &name);
    write_u32(c, ret_id, id)?;
    Ok(Status::Ok)
}
