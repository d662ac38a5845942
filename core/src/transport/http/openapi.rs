//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the listener's JSON endpoints (the
//! REST data API, `/health`, `/ping`, `/version`, `/metrics`, `/auth/login`,
//! `/auth/logout`), hand-written in `openapi.json` beside this file and served with the
//! broker's version as `info.version`.

use std::sync::LazyLock;

use hyper::{Method, StatusCode};
use serde_json::Value;

use super::HttpResponse;
use super::rest::{not_allowed, respond};

/// The document as written (its `info.version` is a placeholder).
const DOCUMENT: &str = include_str!("openapi.json");

/// The document served: [`DOCUMENT`] with this build's version, built once.
static SERVED: LazyLock<Vec<u8>> = LazyLock::new(|| match document() {
    Some(document) => serde_json::to_vec(&document).unwrap_or_default(),
    // Unreachable while the unit test below passes; the text as written is still valid.
    None => DOCUMENT.as_bytes().to_vec(),
});

/// [`DOCUMENT`] parsed, with `info.version` set to the broker's version; `None` if it
/// does not parse.
fn document() -> Option<Value> {
    let mut document: Value = serde_json::from_str(DOCUMENT).ok()?;
    *document.pointer_mut("/info/version")? = env!("CARGO_PKG_VERSION").into();
    Some(document)
}

/// Answers `/api/openapi.json`: the document on `GET` (and `HEAD`), 405 otherwise.
pub(super) fn serve(method: &Method) -> HttpResponse {
    match *method {
        Method::GET | Method::HEAD => respond(StatusCode::OK, SERVED.clone()),
        _ => not_allowed("GET, HEAD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the document against drifting from the listener: it parses, is OpenAPI 3.1,
    /// and describes every route under `/api` and every JSON endpoint, with the methods
    /// each serves.
    #[test]
    fn the_document_describes_every_route() {
        let document = document().expect("openapi.json parses and has info.version");
        assert!(
            document["openapi"].as_str().unwrap().starts_with("3.1."),
            "{}",
            document["openapi"]
        );
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        let paths = document["paths"].as_object().expect("paths");
        let expected: [(&str, &[&str]); 8] = [
            (
                super::super::rest::ROUTES[0],
                &["get", "put", "patch", "delete"],
            ),
            (super::super::rest::ROUTES[1], &["get"]),
            ("/health", &["get", "head"]),
            ("/ping", &["get"]),
            ("/version", &["get"]),
            ("/metrics", &["get"]),
            ("/auth/login", &["get", "post"]),
            ("/auth/logout", &["post"]),
        ];
        for route in super::super::rest::ROUTES {
            assert!(paths.contains_key(route), "{route} is not described");
        }
        for (path, methods) in expected {
            let item = paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not described"));
            for method in methods {
                let operation = &item[*method];
                assert!(operation.is_object(), "{method} {path} is not described");
                let responses = operation["responses"].as_object().expect("responses");
                assert!(responses.contains_key("200"), "{method} {path}: no 200");
            }
        }
        assert_eq!(
            paths.len(),
            expected.len(),
            "a path is described but not served"
        );
        // The data operations document each error they can answer.
        let data = &paths[super::super::rest::ROUTES[0]];
        for (method, codes) in [
            ("get", &["400", "401", "403", "404", "429", "500"][..]),
            ("put", &["400", "401", "403", "408", "413", "429", "500"]),
            ("patch", &["400", "401", "403", "408", "413", "429", "500"]),
            ("delete", &["400", "401", "403", "429", "500"]),
        ] {
            for code in codes {
                assert!(
                    data[method]["responses"].get(code).is_some(),
                    "{method} does not document {code}"
                );
            }
        }
        // Every `$ref` points at something that exists.
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} points at nothing"
            );
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                        _ => collect_refs(value, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
            _ => {}
        }
    }

    #[test]
    fn only_get_and_head() {
        assert_eq!(serve(&Method::GET).status(), StatusCode::OK);
        assert_eq!(
            serve(&Method::POST).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
