//! Logging in and out over HTTP (`reference/happn-3-wire.md` §7; reference: BROWSER
//! CLIENT AND COOKIES, USING A BEARER TOKEN AUTHORIZATION HEADER): `/auth/login` hands
//! out a token (in the body and in a cookie), `/auth/logout` revokes one; and where a
//! request's token is found.
//!
//! Answers are the reference's JSON: `{"message", "data": <token or null>, "error": null
//! or {"name", "message", "code"}}`, with the HTTP status of the error's code (400, 401,
//! 403, 405, 408, 413, 500) and `Cache-Control: no-store`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;

use super::answer::{Answer, answer, failure, not_allowed, reply};
use super::{HttpResponse, Shared, urlencoded};
use crate::error::Error;
use crate::security::{Credentials, LoginError};

/// The token cookie: its name (with `_https` appended when `https_cookie` is on) and
/// whether it is `Secure`.
#[derive(Debug, Clone)]
pub(super) struct Cookie {
    name: String,
    secure: bool,
}

impl Cookie {
    pub(super) fn new(name: &str, https: bool) -> Self {
        Self {
            name: match https {
                true => format!("{name}_https"),
                false => name.to_owned(),
            },
            secure: https,
        }
    }

    /// The cookie's name (also a query parameter that may carry the token).
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` value that stores `token` for `max_age` seconds.
    fn set(&self, token: &str, max_age: u64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.name
        );
        HeaderValue::from_str(&cookie).ok()
    }

    /// The `Set-Cookie` value that deletes the cookie.
    fn clear(&self) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            self.name
        );
        HeaderValue::from_str(&cookie).ok()
    }
}

/// The token a request carries: `Authorization: Bearer <token>`, else the query's `token`
/// (or the cookie's name, as the reference's `?happn_token=`), else the cookie. Empty
/// values count as none.
pub(super) fn token_of(req: &Request<Incoming>, cookie: &Cookie) -> Option<String> {
    let headers = req.headers();
    let bearer = (headers.get_all(header::AUTHORIZATION).iter())
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .map(str::to_owned);
    let query = || {
        let query = req.uri().query()?;
        urlencoded::value(query, "token")
            .filter(|t| !t.is_empty())
            .or_else(|| urlencoded::value(query, &cookie.name))
    };
    let cookies = || {
        (headers.get_all(header::COOKIE).iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == cookie.name)
            .map(|(_, value)| value.trim_matches('"').to_owned())
    };
    bearer
        .or_else(query)
        .or_else(cookies)
        .filter(|t| !t.is_empty())
}

/// What `/auth/login` reads from a JSON body, a form body or the query string. `Debug`
/// shows neither the password nor the token.
#[derive(Default, Deserialize)]
struct LoginFields {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    token: Option<String>,
    /// The auth provider to check a password with (reference: `authType`).
    #[serde(default, rename = "authType", alias = "auth_type")]
    auth_type: Option<String>,
}

impl std::fmt::Debug for LoginFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFields")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("auth_type", &self.auth_type)
            .finish()
    }
}

impl LoginFields {
    fn from_urlencoded(text: &str) -> Self {
        let field = |name| urlencoded::value(text, name).filter(|v| !v.is_empty());
        Self {
            username: field("username"),
            password: field("password"),
            token: field("token"),
            auth_type: field("authType").or_else(|| field("auth_type")),
        }
    }

    fn is_empty(&self) -> bool {
        self.username.is_none() && self.password.is_none() && self.token.is_none()
    }

    fn credentials(self) -> Option<Credentials> {
        Credentials::from_fields(
            self.username,
            self.password.map(Into::into),
            self.token,
            self.auth_type,
        )
    }
}

/// `/auth/login`: `POST` with a JSON (`{"username", "password"}` or `{"token"}`) or form
/// body, or `GET` with the query string; a stateless login (profile `type` 0).
pub(super) async fn login(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    const FAILED: &str = "login failed";
    let Some(security) = shared.core.security() else {
        return failure(FAILED, &security_off());
    };
    let fields = match *req.method() {
        Method::GET => {
            let fields = LoginFields::from_urlencoded(req.uri().query().unwrap_or(""));
            if fields.password.is_some() {
                // A query string ends up in access logs and browser history, and a link
                // could log a victim in as someone else (login CSRF).
                let error = Error::BadRequest(
                    "send a password with POST (a JSON or form body), not in the query string"
                        .into(),
                );
                return failure(FAILED, &error);
            }
            fields
        }
        Method::POST => match read_fields(shared, req).await {
            Ok(fields) => fields,
            Err(response) => return response,
        },
        _ => return not_allowed("GET, POST"),
    };
    let Some(credentials) = fields.credentials() else {
        let error = Error::Unauthenticated(
            "no credentials: give `username` and `password`, or `token`".into(),
        );
        return failure(FAILED, &error);
    };
    let username = credentials.username().map(str::to_owned);
    match security.login_http(credentials, peer).await {
        Ok(identity) => {
            let Some(login) = identity.login.as_ref() else {
                return failure(FAILED, &Error::Internal("the login gave no token".into()));
            };
            tracing::info!(username = %identity.username, "http login");
            let mut response = answer(
                StatusCode::OK,
                &Answer {
                    message: "login successful",
                    data: Some(&login.token),
                    error: None,
                },
            );
            let cookie = shared.cookie.set(&login.token, login.token_expires_in());
            if let Some(cookie) = cookie {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            tracing::info!(username = ?username, %error, "http login refused");
            let retry_after = match &error {
                LoginError::LockedOut { retry_after } => Some(retry_after.as_secs().max(1)),
                _ => None,
            };
            let mut response = failure(FAILED, &Error::from(error));
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            response
        }
    }
}

/// `/auth/logout` (`POST`): revokes the request's token for good (every session using it
/// ends) and deletes the cookie.
pub(super) async fn logout(shared: &Shared, req: Request<Incoming>) -> HttpResponse {
    const FAILED: &str = "logout failed";
    let Some(security) = shared.core.security() else {
        return failure(FAILED, &security_off());
    };
    if req.method() != Method::POST {
        return not_allowed("POST");
    }
    let Some(token) = token_of(&req, &shared.cookie) else {
        return failure(FAILED, &no_token(&shared.cookie));
    };
    let claims = match security.tokens().verify(&token) {
        Ok(claims) => claims,
        Err(error) => return failure(FAILED, &Error::Unauthenticated(error.to_string())),
    };
    if let Err(error) = security.revoke_token(&claims).await {
        return failure(FAILED, &Error::Internal(error.to_string()));
    }
    shared.sessions.forget(&claims.jti);
    tracing::info!(username = %claims.sub, "http logout");
    let mut response = answer(
        StatusCode::OK,
        &Answer {
            message: "logout successful",
            data: None,
            error: None,
        },
    );
    if let Some(cookie) = shared.cookie.clear() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The 401 error of a request without a token.
pub(super) fn no_token(cookie: &Cookie) -> Error {
    Error::Unauthenticated(format!(
        "no token: log in at /auth/login, then send the `{}` cookie, `?token=` or \
         `Authorization: Bearer <token>`",
        cookie.name
    ))
}

fn security_off() -> Error {
    Error::BadRequest(
        "security is off: this broker logs nobody in (set security.secure = true)".into(),
    )
}

/// The login fields of a `POST`: its body (form or JSON, by `Content-Type`), or the
/// query string when the body is empty. The body is bounded in size and time.
async fn read_fields(shared: &Shared, req: Request<Incoming>) -> Result<LoginFields, HttpResponse> {
    const FAILED: &str = "login failed";
    let form = (req.headers().get(header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = read_body(req.into_body(), shared.max_body, shared.body_timeout).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LoginFields::from_urlencoded(&query));
    }
    if form {
        let text = std::str::from_utf8(&body).map_err(|_| {
            failure(
                FAILED,
                &Error::BadRequest("the form body is not UTF-8".into()),
            )
        })?;
        return Ok(LoginFields::from_urlencoded(text));
    }
    let fields: LoginFields = serde_json::from_slice(&body).map_err(|error| {
        let message = format!(
            "the body is not a JSON object of strings {{\"username\", \"password\"}} or \
             {{\"token\"}}: {error}"
        );
        failure(FAILED, &Error::BadRequest(message))
    })?;
    Ok(match fields.is_empty() {
        true => LoginFields::from_urlencoded(&query),
        false => fields,
    })
}

/// The whole body, at most `max` bytes, within `timeout`; else the 413, 408 or 400 answer.
async fn read_body(body: Incoming, max: usize, timeout: Duration) -> Result<Bytes, HttpResponse> {
    let too_large = || {
        let message = format!("the request body is over the limit of {max} bytes");
        reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "login failed",
            "PayloadTooLarge",
            &message,
        )
    };
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(error)) => {
            let error = Error::BadRequest(format!("the request body could not be read: {error}"));
            Err(failure("login failed", &error))
        }
        Err(_) => {
            let message = format!("the request body did not arrive within {timeout:?}");
            Err(reply(
                StatusCode::REQUEST_TIMEOUT,
                "login failed",
                "RequestTimeout",
                &message,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_named_and_flagged_by_the_https_option() {
        let plain = Cookie::new("pathmq_token", false);
        assert_eq!(
            plain.set("t0k", 60).unwrap(),
            "pathmq_token=t0k; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        let https = Cookie::new("myCookie", true);
        assert_eq!(
            https.set("t0k", 5).unwrap(),
            "myCookie_https=t0k; Path=/; HttpOnly; SameSite=Lax; Max-Age=5; Secure"
        );
        assert_eq!(
            https.clear().unwrap(),
            "myCookie_https=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
        );
    }

    #[test]
    fn login_fields_give_credentials() {
        let fields = |u: Option<&str>, p: Option<&str>, t: Option<&str>| LoginFields {
            username: u.map(Into::into),
            password: p.map(Into::into),
            token: t.map(Into::into),
            auth_type: None,
        };
        assert!(matches!(
            fields(Some("ann"), Some("pw"), None).credentials(),
            Some(Credentials::Password { .. })
        ));
        assert!(matches!(
            fields(None, None, Some("eyJ")).credentials(),
            Some(Credentials::Token { username: None, .. })
        ));
        assert!(matches!(
            fields(Some("_ANONYMOUS"), None, None).credentials(),
            Some(Credentials::Anonymous)
        ));
        assert!(fields(Some("ann"), None, None).credentials().is_none());
        assert!(fields(None, Some("pw"), None).credentials().is_none());
        assert!(fields(None, None, None).credentials().is_none());
        let form = LoginFields::from_urlencoded("username=ann&password=p%40ss&x=1");
        assert_eq!(form.password.as_deref(), Some("p@ss"));
    }
}
