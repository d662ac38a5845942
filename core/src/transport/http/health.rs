//! `GET /health` (and `HEAD`): whether the broker takes work, for load balancers and
//! orchestrators (a readiness probe; `/ping` stays the bare liveness answer).
//!
//! 200 `{"status": "ok", "name", "version", "uptime_secs", "store": "ok"}` when the broker
//! is not shutting down and its store answers a read of one key within
//! [`STORE_CHECK_TIMEOUT`] (cheap: a point read of a key that is never written); else 503
//! with `status` `"shutting_down"` or `"unavailable"` (and `store` saying what failed).
//! Never cached.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::json;

use super::HttpResponse;
use super::rest::{not_allowed, respond};
use crate::path::Path;
use crate::pipeline::Core;

/// How long the store has to answer the health read.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The key the health check reads: reserved for the broker (no client can write it), and
/// never written, so the read is a miss.
const PROBE_PATH: &str = "/_SYSTEM/health";

/// Answers `/health`.
pub(super) async fn serve(core: &Core, method: &Method) -> HttpResponse {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return not_allowed("GET, HEAD");
    }
    let (status, state, store) = check(core).await;
    let body = json!({
        "status": state,
        "name": core.config().name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": core.uptime().as_secs(),
        "store": store,
    });
    respond(status, serde_json::to_vec(&body).unwrap_or_default())
}

/// The status code, the `status` word and the store's state.
async fn check(core: &Core) -> (StatusCode, &'static str, String) {
    const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
    if core.shutdown_token().is_cancelled() {
        return (UNAVAILABLE, "shutting_down", "not checked".into());
    }
    let probe = match Path::parse(PROBE_PATH) {
        Ok(probe) => probe,
        Err(error) => return (UNAVAILABLE, "unavailable", format!("error: {error}")),
    };
    match tokio::time::timeout(STORE_CHECK_TIMEOUT, core.store().get(&probe)).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok", "ok".into()),
        Ok(Err(error)) => (UNAVAILABLE, "unavailable", format!("error: {error}")),
        Err(_) => (
            UNAVAILABLE,
            "unavailable",
            format!("no answer within {STORE_CHECK_TIMEOUT:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt as _;
    use serde_json::Value;

    use super::*;
    use crate::security::mem_store::MemStore;

    async fn body(response: HttpResponse) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Guards the three answers: ok, a failing store, and shutdown; and the methods.
    #[tokio::test]
    async fn health_follows_the_store_and_shutdown() {
        let core = Core::builder_arc(Arc::new(MemStore::default())).build();
        let ok = serve(&core, &Method::GET).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let ok = body(ok).await;
        assert_eq!(ok["status"], "ok");
        assert_eq!(ok["store"], "ok");
        assert_eq!(ok["version"], env!("CARGO_PKG_VERSION"));

        let post = serve(&core, &Method::POST).await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

        core.begin_shutdown();
        let closing = serve(&core, &Method::GET).await;
        assert_eq!(closing.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(closing).await["status"], "shutting_down");

        let down = Core::builder(crate::store::ClosedStore).build();
        let failing = serve(&down, &Method::HEAD).await;
        assert_eq!(failing.status(), StatusCode::SERVICE_UNAVAILABLE);
        let failing = body(failing).await;
        assert_eq!(failing["status"], "unavailable");
        assert!(
            failing["store"].as_str().unwrap().starts_with("error: "),
            "{failing}"
        );
    }
}
