//! `dp_response`: the agent's answer to a send.

use std::ffi::c_double;

use engine::exporter::AgentResponse;

use crate::error::{arg_ref, dp_error, dp_status, free_box, FfiError, OutParam};
use crate::slice::{dp_bytes, dp_str};

/// The agent's answer to a delivered payload: HTTP status, raw body, and the sampling rates it sent
/// (`rate_by_service`), already parsed. Free with `dp_response_free`.
///
/// Immutable: thread-safe (Send + Sync).
pub struct dp_response {
    response: AgentResponse,
}

const _: () = {
    crate::assert_thread::send::<dp_response>();
    crate::assert_thread::sync::<dp_response>();
};

impl dp_response {
    pub(crate) fn new(response: AgentResponse) -> dp_response {
        dp_response { response }
    }
}

/// The HTTP status of the answer (2xx: errors are returned as `DP_STATUS_HTTP` instead); 0 when
/// `response` is NULL.
///
/// # Safety
/// `response` is NULL or a live response.
#[no_mangle]
pub unsafe extern "C" fn dp_response_status(response: *const dp_response) -> u16 {
    boundary! {
        // SAFETY: forwarded contract.
        unsafe { response.as_ref() }.map_or(0, |r| r.response.status)
    }
}

/// The raw body of the answer (JSON for trace endpoints). The view is valid until
/// `dp_response_free(response)`; `{NULL, 0}` when `response` is NULL. Not NUL-terminated.
///
/// # Safety
/// `response` is NULL or a live response.
#[no_mangle]
pub unsafe extern "C" fn dp_response_body(response: *const dp_response) -> dp_bytes {
    boundary! {
        // SAFETY: forwarded contract.
        match unsafe { response.as_ref() } {
            Some(r) => dp_bytes::from_slice(&r.response.body),
            None => dp_bytes::EMPTY,
        }
    }
}

/// The sampling rate the agent asks the tracer to apply to traces of (`service`, `env`), in [0, 1]:
/// the rate of the key `service:<service>,env:<env>`, else the agent's default rate
/// (`service:,env:`). Writes `*out` and returns NULL when there is one; returns
/// `DP_STATUS_NOT_FOUND` (and leaves `*out` alone) when the answer had neither.
///
/// # Safety
/// `response` is NULL or a live response; `service` and `env` are valid views; `out` is NULL or
/// valid for a write.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn dp_response_sampling_rate(
    response: *const dp_response,
    service: dp_str,
    env: dp_str,
    out: *mut c_double,
) -> *mut dp_error {
    boundary! {
        // SAFETY: forwarded contract.
        let response = unsafe { arg_ref(response, "response") }?;
        // SAFETY: forwarded contract.
        let (service, env) = unsafe { (service.as_str("service")?, env.as_str("env")?) };
        let out = OutParam::new(out, "out")?;
        let rate = response.response.rate(service, env).ok_or_else(|| {
            FfiError::new(
                dp_status::DP_STATUS_NOT_FOUND,
                format!("the agent sent no sampling rate for service:{service},env:{env} and no default"),
            )
        })?;
        // SAFETY: checked non-NULL, valid for writes by contract.
        unsafe { out.write(rate) };
        Ok(())
    }
}

/// Frees a response. NULL is a no-op.
///
/// # Safety
/// `response` is NULL or a live response, not freed before.
#[no_mangle]
pub unsafe extern "C" fn dp_response_free(response: *mut dp_response) {
    boundary! {
        // SAFETY: by contract NULL or a live response given up by the caller.
        unsafe { free_box(response) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::error::take_status as status;

    #[test]
    fn rates_status_and_body() {
        let body = br#"{"rate_by_service":{"service:web,env:prod":0.25,"service:,env:":1.0}}"#;
        let r = Box::into_raw(Box::new(dp_response::new(AgentResponse::new(
            200,
            body.to_vec(),
        ))));
        unsafe {
            assert_eq!(dp_response_status(r), 200);
            let b = dp_response_body(r);
            assert_eq!(std::slice::from_raw_parts(b.ptr, b.len), body);
            let mut rate = -1.0;
            assert_eq!(
                status(dp_response_sampling_rate(
                    r,
                    dp_str::of("web"),
                    dp_str::of("prod"),
                    &mut rate
                )),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(rate, 0.25);
            assert_eq!(
                status(dp_response_sampling_rate(
                    r,
                    dp_str::of("db"),
                    dp_str::of("prod"),
                    &mut rate
                )),
                dp_status::DP_STATUS_OK
            );
            assert_eq!(rate, 1.0);
            let bad = dp_str {
                ptr: b"\xff".as_ptr().cast(),
                len: 1,
            };
            assert_eq!(
                status(dp_response_sampling_rate(
                    r,
                    bad,
                    dp_str::of("e"),
                    &mut rate
                )),
                dp_status::DP_STATUS_INVALID_UTF8
            );
            assert_eq!(
                status(dp_response_sampling_rate(
                    r,
                    dp_str::of("w"),
                    dp_str::of("e"),
                    std::ptr::null_mut()
                )),
                dp_status::DP_STATUS_NULL_ARGUMENT
            );
            dp_response_free(r);

            let r = Box::into_raw(Box::new(dp_response::new(AgentResponse::new(
                200,
                b"OK".to_vec(),
            ))));
            let mut rate = -1.0;
            assert_eq!(
                status(dp_response_sampling_rate(
                    r,
                    dp_str::of("web"),
                    dp_str::EMPTY,
                    &mut rate
                )),
                dp_status::DP_STATUS_NOT_FOUND
            );
            assert_eq!(rate, -1.0, "out untouched on error");
            dp_response_free(r);

            assert_eq!(dp_response_status(std::ptr::null()), 0);
            assert_eq!(dp_response_body(std::ptr::null()).len, 0);
            dp_response_free(std::ptr::null_mut());
        }
    }
}
