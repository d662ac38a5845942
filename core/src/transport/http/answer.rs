//! The JSON answers of the listener's own endpoints (`/auth/…`) and refusals on routes,
//! in the reference's shape: `{"message", "data", "error": null or {"name", "message",
//! "code"}}`, the HTTP status being the error's code, never cached.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::HttpResponse;
use crate::error::Error;

/// The body of every answer, its keys in the reference's order.
#[derive(Serialize)]
pub(super) struct Answer<'a> {
    pub(super) message: &'a str,
    pub(super) data: Option<&'a str>,
    pub(super) error: Option<ErrorBody<'a>>,
}

#[derive(Serialize)]
pub(super) struct ErrorBody<'a> {
    name: &'a str,
    message: &'a str,
    code: u16,
}

/// A JSON answer with `status`, not to be cached.
pub(super) fn answer(status: StatusCode, body: &Answer<'_>) -> HttpResponse {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The answer to a refused request: the status of `error`'s code, and `WWW-Authenticate:
/// Bearer` with a 401 (RFC 9110 §15.5.2).
pub(super) fn failure(message: &str, error: &Error) -> HttpResponse {
    let status = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, message, error.name(), &error.to_string())
}

pub(super) fn reply(status: StatusCode, message: &str, name: &str, detail: &str) -> HttpResponse {
    let error = ErrorBody {
        name,
        message: detail,
        code: status.as_u16(),
    };
    let body = Answer {
        message,
        data: None,
        error: Some(error),
    };
    let mut response = answer(status, &body);
    challenge(&mut response);
    response
}

/// Adds `WWW-Authenticate: Bearer` to a 401 (RFC 9110 §15.5.2); other answers unchanged.
pub(super) fn challenge(response: &mut HttpResponse) {
    if response.status() == StatusCode::UNAUTHORIZED {
        (response.headers_mut()).insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"pathmq\""),
        );
    }
}

pub(super) fn not_allowed(allow: &'static str) -> HttpResponse {
    let message = format!("use {allow}");
    let mut response = reply(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        "MethodNotAllowed",
        &message,
    );
    (response.headers_mut()).insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
