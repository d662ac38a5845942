//! The static resources protocols provide ([`Protocol::http_resources`], e.g. the browser
//! client at `/browser_client`): collected once at start, served on `GET` and `HEAD` with
//! a strong `ETag`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher as _};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::{WebSocketRoute, is_taken, text};
use crate::protocol::{HttpResource, Protocol};

/// A protocol's [`HttpResource`], with its headers ready.
pub(super) struct Resource {
    content_type: HeaderValue,
    /// A strong validator derived from the body: the same bytes give the same tag (also
    /// after a restart of the same build), so a browser's cached copy stays valid until
    /// the bytes change.
    etag: HeaderValue,
    body: Bytes,
}

impl Resource {
    fn new(resource: HttpResource) -> Result<Self, header::InvalidHeaderValue> {
        let mut hasher = DefaultHasher::new();
        hasher.write(&resource.body);
        let etag = format!("\"{:x}-{:016x}\"", resource.body.len(), hasher.finish());
        Ok(Self {
            content_type: HeaderValue::from_str(&resource.content_type)?,
            etag: HeaderValue::from_str(&etag)?,
            body: resource.body,
        })
    }
}

/// The static resources of the routes' protocols, each protocol asked once. A path taken
/// by the listener itself or by an earlier resource is logged and skipped.
pub(super) fn collect_resources(routes: &[WebSocketRoute]) -> HashMap<String, Resource> {
    let mut asked: Vec<&Arc<dyn Protocol>> = Vec::new();
    let mut resources = HashMap::new();
    for route in routes {
        if asked.iter().any(|p| Arc::ptr_eq(p, &route.protocol)) {
            continue;
        }
        asked.push(&route.protocol);
        for resource in route.protocol.http_resources() {
            let path = resource.path.clone().into_owned();
            let protocol = route.protocol.name();
            if is_taken(&path) || resources.contains_key(&path) {
                tracing::warn!(%path, protocol, "HTTP resource path already taken; not served");
                continue;
            }
            match Resource::new(resource) {
                Ok(served) => {
                    resources.insert(path, served);
                }
                Err(error) => {
                    tracing::warn!(%path, protocol, %error, "HTTP resource has a bad header value; not served");
                }
            }
        }
    }
    resources
}

/// Answers a request for a static resource: the body on `GET`, the headers alone on
/// `HEAD`, `304 Not Modified` when `If-None-Match` names its tag, 405 for other methods.
pub(super) fn serve_resource(
    resource: &Resource,
    method: &Method,
    headers: &header::HeaderMap,
) -> Response<Full<Bytes>> {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here; use GET or HEAD"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag.as_bytes() == resource.etag.as_bytes());
    let (status, body) = match (fresh, head) {
        (true, _) => (StatusCode::NOT_MODIFIED, Bytes::new()),
        (false, true) => (StatusCode::OK, Bytes::new()),
        (false, false) => (StatusCode::OK, resource.body.clone()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::ETAG, resource.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if status == StatusCode::OK {
        headers.insert(header::CONTENT_TYPE, resource.content_type.clone());
        // On HEAD, the length of the body a GET would get.
        headers.insert(header::CONTENT_LENGTH, resource.body.len().into());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    struct Static(Vec<HttpResource>);

    #[async_trait::async_trait]
    impl Protocol for Static {
        fn name(&self) -> &'static str {
            "static"
        }

        fn http_resources(&self) -> Vec<HttpResource> {
            self.0.clone()
        }
    }

    fn route(path: &str, protocol: &Arc<dyn Protocol>) -> WebSocketRoute {
        WebSocketRoute {
            path: path.into(),
            subprotocol: None,
            protocol: protocol.clone(),
        }
    }

    fn body(response: Response<Full<Bytes>>) -> Bytes {
        let collect = response.into_body().collect();
        futures_util::FutureExt::now_or_never(collect)
            .and_then(Result::ok)
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }

    /// Guards the first-wins rule: a built-in path or one already given is not taken, and
    /// a protocol routed at two paths is asked once.
    #[test]
    fn resources_keep_the_first_and_leave_built_ins_alone() {
        let first: Arc<dyn Protocol> = Arc::new(Static(vec![
            HttpResource::new("/client.js", "application/javascript", "first"),
            HttpResource::new("/ping", "text/plain", "not pong"),
        ]));
        let second: Arc<dyn Protocol> = Arc::new(Static(vec![
            HttpResource::new("/client.js", "application/javascript", "second"),
            HttpResource::new("/other", "text/plain", "other"),
            HttpResource::new("/bad", "text/plain\n", "bad header"),
        ]));
        let routes = [
            route("/", &first),
            route("/primus", &first),
            route("/x", &second),
        ];
        let resources = collect_resources(&routes);
        let mut paths: Vec<_> = resources.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["/client.js", "/other"]);
        assert_eq!(&resources["/client.js"].body[..], b"first");
    }

    #[test]
    fn resources_answer_get_head_and_revalidation() {
        let resource =
            Resource::new(HttpResource::new("/c.js", "application/javascript", "abc")).unwrap();
        let none = header::HeaderMap::new();

        let get = serve_resource(&resource, &Method::GET, &none);
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(
            get.headers()[header::CONTENT_TYPE],
            "application/javascript"
        );
        assert_eq!(get.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(get.headers()[header::ETAG], resource.etag);
        assert_eq!(&body(get)[..], b"abc");

        let head = serve_resource(&resource, &Method::HEAD, &none);
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()[header::CONTENT_LENGTH], "3");
        assert!(body(head).is_empty());

        let mut cached = header::HeaderMap::new();
        let tags = format!("\"other\", W/{}", resource.etag.to_str().unwrap());
        cached.insert(header::IF_NONE_MATCH, tags.parse().unwrap());
        let revalidated = serve_resource(&resource, &Method::GET, &cached);
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert!(body(revalidated).is_empty());

        let mut stale = header::HeaderMap::new();
        stale.insert(header::IF_NONE_MATCH, "\"other\"".parse().unwrap());
        assert_eq!(
            serve_resource(&resource, &Method::GET, &stale).status(),
            StatusCode::OK
        );

        let post = serve_resource(&resource, &Method::POST, &none);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");

        // The same bytes give the same tag (also after a restart); other bytes another.
        let again = Resource::new(HttpResource::new("/d.js", "text/plain", "abc")).unwrap();
        let other =
            Resource::new(HttpResource::new("/c.js", "application/javascript", "abd")).unwrap();
        assert_eq!(again.etag, resource.etag);
        assert_ne!(other.etag, resource.etag);
    }
}
