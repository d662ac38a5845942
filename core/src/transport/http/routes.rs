//! The embedding program's own HTTP routes (reference: WEB PATH LEVEL SECURITY,
//! `happn.connect.use`): handlers registered under a path prefix, guarded on a secure
//! broker by `@HTTP` permissions.
//!
//! On a secure broker a request to a route needs a token (the cookie, `?token=` or
//! `Authorization: Bearer`; [`super::auth`]) whose user may use the request's method on
//! `/@HTTP<path>`: no token, or a bad one, is a 401; a good token without the permission
//! a 403 (the reference's answers). On an insecure broker every request reaches its
//! handler. The path is percent-decoded and checked first (no encoded `/`, no `.` or `..`
//! segment, no empty segment, no `*`, no NUL: 400), so that the permission and the handler
//! see the same path.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::{HttpResponse, Shared, answer, auth, text, urlencoded};
use crate::error::Error;
use crate::pipeline::Core;
use crate::security::{Identity, Right};

/// Serves the requests of one route: given the request and what the listener knows of
/// it, answers it. Any `Fn(Request<Incoming>, HttpContext) -> impl Future<Output =
/// HttpResponse>` is one.
#[async_trait::async_trait]
pub trait HttpHandler: Send + Sync + 'static {
    /// Answers `request`. Route on [`HttpContext::path`] (decoded and checked), not on
    /// the request's raw URI. The request may carry the token in its query string or
    /// headers: do not log those.
    async fn call(&self, request: Request<Incoming>, context: HttpContext) -> HttpResponse;
}

#[async_trait::async_trait]
impl<F, Fut> HttpHandler for F
where
    F: Fn(Request<Incoming>, HttpContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    async fn call(&self, request: Request<Incoming>, context: HttpContext) -> HttpResponse {
        self(request, context).await
    }
}

/// An HTTP route: requests whose path is `prefix` or below it (`/reports` serves
/// `/reports` and `/reports/x`, not `/reportsx`; `/` serves everything the listener does
/// not answer itself). The longest matching prefix wins.
#[derive(Clone)]
pub struct HttpRoute {
    /// The path prefix, e.g. `/secure/route`.
    pub prefix: String,
    /// Its handler.
    pub handler: Arc<dyn HttpHandler>,
}

impl HttpRoute {
    /// A route serving `prefix` and below with `handler`.
    pub fn new(prefix: impl Into<String>, handler: impl HttpHandler) -> Self {
        Self {
            prefix: prefix.into(),
            handler: Arc::new(handler),
        }
    }

    fn serves(&self, path: &str) -> bool {
        let prefix = self.prefix.trim_end_matches('/');
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl std::fmt::Debug for HttpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRoute")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the listener knows of a request it hands to a route.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpContext {
    /// The request's path, percent-decoded and checked (what the permission was decided
    /// on).
    pub path: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// Who sent it, on a secure broker; `None` on an insecure one.
    pub identity: Option<Arc<Identity>>,
    /// The core, to read or write data on the user's behalf.
    pub core: Core,
}

/// The routes that can be served, longest prefix first; a prefix that does not start with
/// `/`, or that the listener answers itself (`/auth`, `/api`, the built-in paths), is
/// logged and skipped.
pub(super) fn checked(mut routes: Vec<HttpRoute>) -> Vec<HttpRoute> {
    routes.retain(|route| {
        let taken = super::is_taken(route.prefix.trim_end_matches('/'));
        let bad = !route.prefix.starts_with('/') || taken;
        if bad {
            tracing::warn!(prefix = %route.prefix, "HTTP route prefix is invalid or taken by the listener; not served");
        }
        !bad
    });
    routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.trim_end_matches('/').len()));
    routes
}

/// Serves a request for one of `shared`'s routes, or 404 when none serves its path.
pub(super) async fn serve(
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let raw = req.uri().path().to_owned();
    let path = match route_path(&raw) {
        Ok(path) => path,
        Err(why) => {
            let error = Error::BadRequest(format!("bad request path: {why}"));
            return answer::failure("bad request", &error);
        }
    };
    let Some(route) = shared.routes.iter().find(|r| r.serves(&path)) else {
        return text(StatusCode::NOT_FOUND, format!("not found: {raw}"));
    };
    let identity = match shared.core.security() {
        None => None,
        Some(security) => {
            let Some(token) = auth::token_of(&req, &shared.cookie) else {
                return refused(&auth::no_token(&shared.cookie));
            };
            let identity = match security.http_identity(&token, peer, &shared.sessions).await {
                Ok(identity) => identity,
                Err(error) => return refused(&error),
            };
            let method = req.method().as_str();
            let allowed = match Right::of_http_method(method) {
                Some(right) => security.authorize_http(&identity, right, &path),
                None => Err(Error::Forbidden(format!(
                    "no permission can allow the method {method}"
                ))),
            };
            if let Err(error) = allowed {
                tracing::debug!(username = %identity.username, %error, "http route refused");
                return refused(&error);
            }
            Some(identity)
        }
    };
    let context = HttpContext {
        path,
        peer,
        identity,
        core: shared.core.clone(),
    };
    route.handler.call(req, context).await
}

fn refused(error: &Error) -> Response<Full<Bytes>> {
    let message = match error.code() {
        401 => "authentication required",
        403 => "access denied",
        _ => "request refused",
    };
    answer::failure(message, error)
}

/// The request path `raw` percent-decoded, or why it is refused.
fn route_path(raw: &str) -> Result<String, &'static str> {
    if raw.contains("%2f") || raw.contains("%2F") {
        return Err("an encoded `/`");
    }
    let path = urlencoded::decode(raw, false).ok_or("a malformed escape or non-UTF-8 bytes")?;
    let Some(segments) = path.strip_prefix('/') else {
        return Err("it does not start with `/`");
    };
    if path.contains('\0') || path.contains('*') {
        return Err("a NUL or `*`");
    }
    let count = segments.split('/').count();
    for (i, segment) in segments.split('/').enumerate() {
        match segment {
            "." | ".." => return Err("a `.` or `..` segment"),
            "" if i + 1 < count => return Err("an empty segment"),
            _ => {}
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_and_checked() {
        assert_eq!(route_path("/a/b%20c/").unwrap(), "/a/b c/");
        assert_eq!(route_path("/").unwrap(), "/");
        for bad in [
            "/a%2Fb",
            "/a/../b",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a//b",
            "/a/*",
            "/a%00",
            "/%ff",
        ] {
            assert!(route_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_longest_prefix_serves_and_segments_are_respected() {
        let handler = |_req: Request<Incoming>, _ctx: HttpContext| async {
            text(StatusCode::OK, String::new())
        };
        let routes = checked(vec![
            HttpRoute::new("/", handler),
            HttpRoute::new("/secure/route/", handler),
            HttpRoute::new("/secure", handler),
            HttpRoute::new("/ping", handler),
            HttpRoute::new("/auth/extra", handler),
            HttpRoute::new("/api", handler),
            HttpRoute::new("/api/data/x/", handler),
            HttpRoute::new("/health", handler),
            HttpRoute::new("no-slash", handler),
        ]);
        let prefixes: Vec<_> = routes.iter().map(|r| r.prefix.as_str()).collect();
        assert_eq!(prefixes, ["/secure/route/", "/secure", "/"]);
        let find = |path: &str| {
            routes
                .iter()
                .find(|r| r.serves(path))
                .map(|r| r.prefix.as_str())
        };
        assert_eq!(find("/secure/route/test"), Some("/secure/route/"));
        assert_eq!(find("/secure/route"), Some("/secure/route/"));
        assert_eq!(find("/secure/routex"), Some("/secure"));
        assert_eq!(find("/securex"), Some("/"));
    }
}
