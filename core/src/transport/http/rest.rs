//! The REST data API (docs/REST.md): records over plain HTTP for scripts and curl, in the
//! native protocol's JSON shapes, under the native protocol's permissions.
//!
//! | request | core request | answer |
//! |---|---|---|
//! | `GET /api/data/<path>` | `get` | 200 the record; 404 when there is none |
//! | `GET /api/data/<glob>`, or any path with `criteria`, `sort`, `skip`, `limit` or `fields` | `get` / search | 200 an array of records (maybe empty) |
//! | `PUT /api/data/<path>`, body: JSON | `set` | 200 the stored record |
//! | `PATCH /api/data/<path>`, body: JSON | `set` with `merge` | 200 the merged record |
//! | `DELETE /api/data/<path or glob>` (`criteria` optional) | `remove` | 200 `{"removed": N}` |
//!
//! A record is its native view with `"_meta": {path, created, modified, modifiedBy?}`, as an
//! item of a native `get` answer: `{"temp": 21, "_meta": {"path": "/s/k", …}}`.
//!
//! # One request, one session
//! Each request runs through the core's pipeline ([`Session::request`]) in a session of its
//! own (protocol `"http"`), opened when the request is admitted and dropped with its
//! answer: inbound layers, authorization, `/_SYSTEM` refusals, events and counters are
//! those of a native request, and subscribers see a `PUT`'s event as any other. On a
//! secure broker the request needs a token (`Authorization: Bearer`, `?token=` or the
//! cookie; [`super::auth::token_of`]) and its session takes the token's identity
//! ([`crate::security::Security::http_identity`]); the pipeline authorizes it (403) and
//! counts it once against the token's policy.
//!
//! # Errors
//! `{"error": {"name", "code", "message"}}` with the HTTP status of the code: 400 (a bad
//! path, query parameter or body), 401 (no token, or a bad one; with `WWW-Authenticate`),
//! 403, 404, 405 (with `Allow`), 408 (the body is late), 413 (the body is over the core's
//! `max_payload`), 429, 500. A refused request changes nothing.

mod params;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{HttpResponse, Shared, auth, urlencoded};
use crate::error::Error;
use crate::path::Path;
use crate::pattern::Glob;
use crate::payload::{Payload, Record};
use crate::request::{Consistency, Request as CoreRequest, Response as CoreResponse, SetOptions};
use crate::session::Session;
use params::Params;

/// Where the records are: `/api/data/<path>`.
pub(super) const DATA_PREFIX: &str = "/api/data";

/// The OpenAPI document of the listener's JSON endpoints ([`super::openapi`]).
pub(super) const OPENAPI_PATH: &str = "/api/openapi.json";

/// Every route the listener serves under `/api`, as the OpenAPI document names them.
pub(super) const ROUTES: [&str; 2] = ["/api/data/{path}", OPENAPI_PATH];

/// The methods of `/api/data/…`, for `Allow`.
const DATA_METHODS: &str = "GET, PUT, PATCH, DELETE";

/// Whether `path` is under `/api`, which the REST API answers (404 for what it lacks).
pub(super) fn serves(path: &str) -> bool {
    path.strip_prefix("/api")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a request for a path under `/api` ([`serves`]).
pub(super) async fn serve(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let raw = req.uri().path();
    if raw == OPENAPI_PATH {
        return super::openapi::serve(req.method());
    }
    let Some(target) = raw
        .strip_prefix(DATA_PREFIX)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    else {
        let error = Error::NotFound(format!(
            "no API endpoint at `{raw}`; the endpoints are {}",
            ROUTES.join(", ")
        ));
        return failure(&error);
    };
    if !matches!(
        *req.method(),
        Method::GET | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return not_allowed(DATA_METHODS);
    }
    let target = target.to_owned();
    match data(shared, req, peer, &target).await {
        Ok(response) | Err(response) => response,
    }
}

/// A request to `/api/data<target>` (`target` still percent-encoded), any of
/// [`DATA_METHODS`].
async fn data(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
    target: &str,
) -> Result<HttpResponse, HttpResponse> {
    let identity = match shared.core.security() {
        None => None,
        Some(security) => {
            let token = auth::token_of(&req, &shared.cookie)
                .ok_or_else(|| failure(&auth::no_token(&shared.cookie)))?;
            let identity = security
                .http_identity_uncounted(&token, peer, &shared.sessions)
                .await
                .map_err(|error| failure(&error))?;
            Some(identity)
        }
    };
    // `%2F` is a `/` like any other here (unlike routes' paths): a data path is a name, and
    // OpenAPI tools encode the `/`s of a path parameter.
    let target = urlencoded::decode(target, false).ok_or_else(|| {
        failure(&Error::BadRequest(
            "the record path has a malformed %-escape or is not UTF-8".into(),
        ))
    })?;
    let ignored = [shared.cookie.name()];
    let params =
        Params::parse(req.uri().query().unwrap_or(""), &ignored).map_err(|e| failure(&e))?;
    let method = req.method().clone();
    let body = match method {
        Method::PUT | Method::PATCH => {
            params
                .refuse_any(method.as_str())
                .map_err(|e| failure(&e))?;
            Some(read_json(shared, req.into_body()).await?)
        }
        _ => None,
    };
    let session = shared.core.open_session("http", Some(peer), None);
    if let Some(identity) = identity {
        session.set_identity(identity);
    }
    let result = match (method, body) {
        (Method::GET, _) => get(&session, &target, &params).await,
        (Method::PUT, Some(body)) => set(&session, &target, body, false).await,
        (Method::PATCH, Some(body)) => set(&session, &target, body, true).await,
        (Method::DELETE, _) => remove(&session, &target, &params).await,
        (method, _) => Err(Error::Internal(format!("unrouted method {method}"))),
    };
    result.map_err(|error| failure(&error))
}

/// `GET`: one record (404 when none), or the array of a glob or a search.
async fn get(session: &Session, target: &str, params: &Params) -> Result<HttpResponse, Error> {
    let target = Glob::parse(target)?;
    let search = params.query()?;
    let exact = !target.has_wildcard() && search.is_none();
    let shown = target.as_str().to_owned();
    let request = match search {
        Some(query) => CoreRequest::Search { target, query },
        None => CoreRequest::Get { target },
    };
    let records = match session.request(request).await? {
        CoreResponse::Record(record) => record.into_iter().collect(),
        CoreResponse::Records(records) => records,
        other => return Err(unexpected("get", &other)),
    };
    // An exact read comes back as `Records` too when nested permissions filter it.
    match (exact, records.first()) {
        (true, Some(record)) => Ok(ok(&record.to_native_item())),
        (true, None) => Err(Error::NotFound(format!("no record at `{shown}`"))),
        (false, _) => Ok(ok(&Value::Array(
            records.iter().map(Record::to_native_item).collect(),
        ))),
    }
}

/// `PUT` and `PATCH` (`merge`): stores `data` at `target` and answers the stored record. A
/// `_meta` key of an object body is dropped, as the native `set` does.
async fn set(
    session: &Session,
    target: &str,
    mut data: Value,
    merge: bool,
) -> Result<HttpResponse, Error> {
    let path = Path::parse(target)?;
    if let Value::Object(object) = &mut data {
        object.remove("_meta");
    }
    let options = SetOptions {
        merge,
        // As a native writer's: MQTT subscribers get the event at up to QoS 1.
        qos: 1,
        ..SetOptions::default()
    };
    let request = CoreRequest::Set {
        path,
        payload: Payload::json(&data),
        options,
    };
    match session.request(request).await? {
        CoreResponse::Set { record, .. } => Ok(ok(&record.to_native_item())),
        other => Err(unexpected("set", &other)),
    }
}

/// `DELETE`: removes the record, every record of a glob, or those matching `criteria`;
/// answers `{"removed": N}`.
async fn remove(session: &Session, target: &str, params: &Params) -> Result<HttpResponse, Error> {
    let target = Glob::parse(target)?;
    let request = match params.criteria_only()? {
        Some(criteria) => CoreRequest::RemoveMatching {
            target,
            criteria,
            meta: None,
            event_id: None,
        },
        None => CoreRequest::Remove {
            target,
            meta: None,
            event_id: None,
            consistency: Consistency::Transactional,
        },
    };
    match session.request(request).await? {
        CoreResponse::Removed(n) => Ok(ok(&json!({ "removed": n }))),
        other => Err(unexpected("remove", &other)),
    }
}

fn unexpected(action: &str, response: &CoreResponse) -> Error {
    Error::Internal(format!("unexpected answer to `{action}`: {response:?}"))
}

/// The body as JSON: at most the core's `max_payload` bytes (413), arriving within the
/// listener's body timeout (408), JSON text (400).
async fn read_json(shared: &Shared, body: Incoming) -> Result<Value, HttpResponse> {
    let max = shared.core.config().max_payload;
    let timeout = shared.body_timeout;
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            let message = format!("the request body is over the limit of {max} bytes");
            return Err(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                &message,
            ));
        }
        Ok(Err(error)) => {
            let message = format!("the request body could not be read: {error}");
            return Err(failure(&Error::BadRequest(message)));
        }
        Err(_) => {
            let message = format!("the request body did not arrive within {timeout:?}");
            return Err(reply(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                &message,
            ));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        let error = Error::BadRequest("the body is empty: send the record as JSON".into());
        return Err(failure(&error));
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| failure(&Error::BadRequest(format!("the body is not JSON: {error}"))))
}

/// A 200 answer with `body`.
fn ok(body: &Value) -> HttpResponse {
    respond(StatusCode::OK, serde_json::to_vec(body).unwrap_or_default())
}

/// The answer to a request the core or the API refused: the status of `error`'s code.
pub(super) fn failure(error: &Error) -> HttpResponse {
    let status = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, error.name(), &error.to_string())
}

/// `{"error": {"name", "code", "message"}}` with `status`; `WWW-Authenticate: Bearer` with
/// a 401 (RFC 9110 §15.5.2).
pub(super) fn reply(status: StatusCode, name: &str, message: &str) -> HttpResponse {
    let body = json!({"error": {"name": name, "code": status.as_u16(), "message": message}});
    let mut response = respond(status, serde_json::to_vec(&body).unwrap_or_default());
    super::answer::challenge(&mut response);
    response
}

/// 405 with `Allow: allow`.
pub(super) fn not_allowed(allow: &'static str) -> HttpResponse {
    let message = format!("use {allow}");
    let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &message);
    (response.headers_mut()).insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON answer with `status`, not to be cached (records may be private).
pub(super) fn respond(status: StatusCode, body: Vec<u8>) -> HttpResponse {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_the_native_view_with_meta() {
        let record = Record {
            path: Path::parse("/s/k").unwrap(),
            payload: Payload::json(&json!({"t": 21, "_meta": "stale"})),
            created: 1,
            modified: 2,
            modified_by: Some("ann".into()),
            properties: None,
        };
        assert_eq!(
            record.to_native_item(),
            json!({"t": 21, "_meta": {"path": "/s/k", "created": 1, "modified": 2, "modifiedBy": "ann"}})
        );
        let scalar = Record {
            payload: Payload::json(&json!(5)),
            modified_by: None,
            ..record
        };
        assert_eq!(
            scalar.to_native_item(),
            json!({"value": 5, "_meta": {"path": "/s/k", "created": 1, "modified": 2}})
        );
    }

    #[test]
    fn api_paths() {
        assert!(serves("/api"));
        assert!(serves("/api/data/a"));
        assert!(!serves("/apix"));
        assert!(!serves("/ap"));
    }

    #[test]
    fn errors_have_the_status_of_their_code() {
        let response = failure(&Error::Forbidden("no".into()));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = failure(&Error::Unauthenticated("who".into()));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let response = not_allowed(DATA_METHODS);
        assert_eq!(response.headers()[header::ALLOW], DATA_METHODS);
    }
}
