//! The webhook's contract (crate docs): the JSON a login is `POST`ed as, and how an
//! answer (status and body) becomes a verdict or a failure.

use std::collections::BTreeSet;

use pathmq_core::security::{Permissions, SessionFacts, Template, User};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest answer body read (bytes); a longer one fails the call.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What is `POST`ed: `{"username", "password", "protocol", "client_id", "peer"}`.
#[derive(Serialize)]
pub(crate) struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
    protocol: &'a str,
    client_id: Option<&'a str>,
    peer: Option<String>,
}

impl<'a> LoginRequest<'a> {
    pub(crate) fn new(username: &'a str, password: &'a str, facts: &'a SessionFacts) -> Self {
        Self {
            username,
            password,
            protocol: facts.protocol,
            client_id: facts.client_id.as_deref(),
            peer: facts.peer.map(|peer| peer.to_string()),
        }
    }
}

/// A 200 answer: `{"ok": true, "groups": […], "custom_data": {…}, "permissions": {…}}`.
/// Fields other than these are ignored, so a webhook may say more.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    groups: BTreeSet<String>,
    #[serde(default)]
    custom_data: Map<String, Value>,
    #[serde(default)]
    permissions: Permissions,
}

/// What the webhook decided.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// The login is this user.
    Accepted(User),
    /// The login is refused; the status it was refused with.
    Refused(StatusCode),
}

/// Why a call gave no verdict: the login fails as "server unavailable".
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No whole answer within the timeout.
    #[error("no answer within {ms} ms")]
    Timeout { ms: u64 },
    /// The request could not be sent or the answer not read (connection refused, TLS,
    /// reset). The URL is left out of the error: it may hold a secret.
    #[error("call failed: {}", chain(.0))]
    Http(reqwest::Error),
    /// A status other than 200, 401 and 403.
    #[error("answered {0}")]
    Status(StatusCode),
    /// An answer body over [`MAX_ANSWER_BYTES`].
    #[error("answer over {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    /// A 200 whose body is not the answer JSON.
    #[error("answer is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// An accepted login with a permission glob that does not compile.
    #[error("answer's permission `{glob}`: {reason}")]
    Permission { glob: String, reason: String },
}

impl From<reqwest::Error> for CallError {
    fn from(error: reqwest::Error) -> Self {
        Self::Http(error.without_url())
    }
}

/// `error` and its sources, `: `-separated (reqwest's own message is only the outermost).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The verdict of an answer with `status` and `body` to a login of `username`: 200 with
/// `ok` decides by `ok`; 401 and 403 refuse; anything else fails.
pub(crate) fn verdict(
    status: StatusCode,
    body: &[u8],
    username: &str,
) -> Result<Verdict, CallError> {
    match status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(Verdict::Refused(status)),
        other => return Err(CallError::Status(other)),
    }
    let answer: Answer = serde_json::from_slice(body).map_err(CallError::Json)?;
    if !answer.ok {
        return Ok(Verdict::Refused(status));
    }
    for glob in answer.permissions.keys() {
        Template::parse(glob).map_err(|e| CallError::Permission {
            glob: glob.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(Verdict::Accepted(User {
        username: username.to_owned(),
        password_hash: None,
        custom_data: answer.custom_data,
        groups: answer.groups,
        permissions: answer.permissions,
        ..User::default()
    }))
}

/// Reads `response`'s body, refusing more than [`MAX_ANSWER_BYTES`].
pub(crate) async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(CallError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathmq_core::security::Right;
    use serde_json::json;

    #[test]
    fn the_request_carries_the_session_facts() {
        let facts = SessionFacts {
            client_id: Some("dev-1".into()),
            protocol: "mqtt",
            peer: Some("127.0.0.1:4000".parse().unwrap()),
            ..SessionFacts::default()
        };
        let body = serde_json::to_value(LoginRequest::new("ann", "pw", &facts)).unwrap();
        let expect = json!({"username": "ann", "password": "pw", "protocol": "mqtt",
            "client_id": "dev-1", "peer": "127.0.0.1:4000"});
        assert_eq!(body, expect);
        let local = serde_json::to_value(LoginRequest::new("a", "b", &SessionFacts::default()));
        assert_eq!(local.unwrap()["peer"], Value::Null);
    }

    #[test]
    fn answers_become_verdicts() {
        let ok = json!({"ok": true, "groups": ["devices"], "custom_data": {"room": "k"},
            "permissions": {"/s/{{user.username}}/*": {"actions": ["set"]}}, "extra": 1});
        let Ok(Verdict::Accepted(user)) = verdict(StatusCode::OK, ok.to_string().as_bytes(), "ann")
        else {
            panic!("accepted");
        };
        assert_eq!(user.username, "ann");
        assert!(user.groups.contains("devices") && user.password_hash.is_none());
        assert_eq!(user.custom_data["room"], "k");
        assert!(
            user.permissions["/s/{{user.username}}/*"]
                .actions
                .contains(&Right::Set)
        );
        let minimal = verdict(StatusCode::OK, br#"{"ok": true}"#, "bob").unwrap();
        assert!(matches!(minimal, Verdict::Accepted(u) if u.groups.is_empty()));

        for (status, body) in [
            (StatusCode::OK, &br#"{"ok": false}"#[..]),
            (StatusCode::UNAUTHORIZED, b"not json"),
            (StatusCode::FORBIDDEN, b""),
        ] {
            assert_eq!(
                verdict(status, body, "a").unwrap(),
                Verdict::Refused(status)
            );
        }
    }

    #[test]
    fn other_answers_are_failures() {
        for (status, body, expect) in [
            (StatusCode::INTERNAL_SERVER_ERROR, &b""[..], "answered 500"),
            (StatusCode::NO_CONTENT, b"", "answered 204"),
            (StatusCode::FOUND, b"", "answered 302"),
            (StatusCode::OK, b"{", "not the expected JSON"),
            (StatusCode::OK, br#"{"groups": []}"#, "missing field `ok`"),
            (
                StatusCode::OK,
                br#"{"ok": true, "permissions": {"/a": {"actions": ["fly"]}}}"#,
                "not the expected JSON",
            ),
            (
                StatusCode::OK,
                br#"{"ok": true, "permissions": {"/a/{{user.nme}}": {"actions": ["get"]}}}"#,
                "permission `/a/{{user.nme}}`",
            ),
        ] {
            let error = verdict(status, body, "a").unwrap_err().to_string();
            assert!(error.contains(expect), "{expect}: {error}");
        }
    }
}
