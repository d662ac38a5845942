//! The provider against a tiny webhook: a hyper server on `127.0.0.1:0` started by each
//! test, answering as the test says and counting its calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::*;

/// How the test webhook answers a call.
enum Reply {
    /// This status and JSON body.
    Json(u16, Value),
    /// This status and raw body.
    Raw(u16, &'static str),
    /// Never: the call hangs until the client gives up.
    Never,
}

type Answer = dyn Fn(&Value) -> Reply + Send + Sync;

/// A call as the webhook saw it: its `Authorization` header and its body.
type Call = (Option<String>, Value);

/// A running test webhook.
struct Hook {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    /// The last call.
    last: Arc<Mutex<Option<Call>>>,
}

impl Hook {
    async fn start(answer: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Hook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = Hook {
            addr: listener.local_addr().unwrap(),
            calls: Arc::default(),
            last: Arc::default(),
        };
        let answer: Arc<Answer> = Arc::new(answer);
        let (calls, last) = (hook.calls.clone(), hook.last.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, calls, last) = (answer.clone(), calls.clone(), last.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (answer, calls, last) = (answer.clone(), calls.clone(), last.clone());
                    async move {
                        let auth = (request.headers().get("authorization"))
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = request.into_body().collect().await?.to_bytes();
                        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                        calls.fetch_add(1, Ordering::SeqCst);
                        let reply = answer(&body);
                        *last.lock() = Some((auth, body));
                        let (status, text) = match reply {
                            Reply::Json(status, value) => (status, value.to_string()),
                            Reply::Raw(status, text) => (status, text.to_owned()),
                            Reply::Never => std::future::pending().await,
                        };
                        let mut response = Response::new(Full::new(Bytes::from(text)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(async move {
                    let io = TokioIo::new(stream);
                    let _ = (hyper::server::conn::http1::Builder::new())
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        hook
    }

    fn url(&self) -> String {
        format!("http://{}/auth", self.addr)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A webhook accepting `ann`/`pw` in group `devices`, refusing everything else.
async fn ann_hook() -> Hook {
    Hook::start(|body| {
        if body["username"] == "ann" && body["password"] == "pw" {
            Reply::Json(
                200,
                json!({"ok": true, "groups": ["devices"], "custom_data": {"room": "k"}}),
            )
        } else {
            Reply::Json(200, json!({"ok": false}))
        }
    })
    .await
}

fn facts() -> SessionFacts {
    SessionFacts {
        client_id: Some("dev-1".into()),
        protocol: "mqtt",
        peer: Some("127.0.0.1:4000".parse().unwrap()),
        ..SessionFacts::default()
    }
}

async fn login(
    provider: &WebhookAuthProvider,
    user: &str,
    pw: &str,
) -> Result<Option<User>, ProviderError> {
    provider.login(user, Password::new(pw), &facts()).await
}

#[tokio::test]
async fn an_accepting_answer_is_the_user_and_the_call_carries_the_facts() {
    let hook = ann_hook().await;
    let config = WebhookConfig::new(hook.url()).header("Authorization", "Bearer hook-secret");
    let provider = WebhookAuthProvider::new(config).unwrap();
    assert_eq!(provider.name(), "webhook");
    let user = login(&provider, "ann", "pw")
        .await
        .unwrap()
        .expect("accepted");
    assert_eq!(user.username, "ann");
    assert!(user.groups.contains("devices") && user.password_hash.is_none());
    assert_eq!(user.custom_data["room"], "k");
    let (auth, body) = hook.last.lock().clone().unwrap();
    assert_eq!(auth.as_deref(), Some("Bearer hook-secret"));
    let expect = json!({"username": "ann", "password": "pw", "protocol": "mqtt",
        "client_id": "dev-1", "peer": "127.0.0.1:4000"});
    assert_eq!(body, expect);
    assert!(!format!("{provider:?}").contains("hook-secret"));
}

#[tokio::test]
async fn refusing_answers_are_none() {
    for reply in [
        || Reply::Json(200, json!({"ok": false})),
        || Reply::Raw(401, "no"),
        || Reply::Raw(403, ""),
    ] {
        let hook = Hook::start(move |_| reply()).await;
        let provider = WebhookAuthProvider::new(WebhookConfig::new(hook.url())).unwrap();
        assert!(login(&provider, "ann", "pw").await.unwrap().is_none());
        assert_eq!(hook.calls(), 1);
    }
}

#[tokio::test]
async fn failures_are_provider_errors_and_are_not_cached() {
    for (status, body, expect) in [
        (500, "oops", "answered 500"),
        (200, "{not json", "not the expected JSON"),
        (302, "", "answered 302"),
    ] {
        let hook = Hook::start(move |_| Reply::Raw(status, body)).await;
        let provider = WebhookAuthProvider::new(WebhookConfig::new(hook.url())).unwrap();
        for calls in 1..=2 {
            let error = login(&provider, "ann", "pw").await.unwrap_err();
            assert_eq!(error.provider, "webhook");
            assert!(error.reason.contains(expect), "{expect}: {error}");
            assert_eq!(hook.calls(), calls, "a failure is not cached");
        }
        assert!(provider.user("ann").is_none());
    }
}

#[tokio::test]
async fn a_webhook_that_is_down_is_an_error_without_the_url_secret() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://user:url-secret@{addr}/auth?key=query-secret");
    let provider = WebhookAuthProvider::new(WebhookConfig::new(url)).unwrap();
    let error = login(&provider, "ann", "pw").await.unwrap_err().to_string();
    assert!(
        !error.contains("secret") && !error.contains("pw"),
        "{error}"
    );
    assert!(error.contains("webhook call failed"), "{error}");
    assert!(!format!("{provider:?}").contains("secret"));
}

#[tokio::test]
async fn a_slow_webhook_times_out() {
    let hook = Hook::start(|_| Reply::Never).await;
    let provider =
        WebhookAuthProvider::new(WebhookConfig::new(hook.url()).timeout_ms(100)).unwrap();
    let started = Instant::now();
    let error = login(&provider, "ann", "pw").await.unwrap_err();
    assert!(error.reason.contains("no answer within 100 ms"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn accepted_logins_are_cached_for_their_password_only() {
    let hook = ann_hook().await;
    let provider = WebhookAuthProvider::new(WebhookConfig::new(hook.url())).unwrap();
    assert!(provider.user("ann").is_none(), "nothing cached yet");
    for _ in 0..2 {
        assert!(login(&provider, "ann", "pw").await.unwrap().is_some());
    }
    assert_eq!(hook.calls(), 1, "the second login came from the cache");
    assert_eq!(provider.user("ann").unwrap().groups.len(), 1);
    assert!(login(&provider, "ann", "other").await.unwrap().is_none());
    assert_eq!(hook.calls(), 2, "another password asks the webhook");
    assert!(login(&provider, "ann", "pw").await.unwrap().is_some());
    assert_eq!(
        hook.calls(),
        2,
        "the refusal did not drop the accepted password"
    );

    let uncached =
        WebhookAuthProvider::new(WebhookConfig::new(hook.url()).cache_ttl_ms(0)).unwrap();
    for _ in 0..2 {
        assert!(login(&uncached, "ann", "pw").await.unwrap().is_some());
    }
    assert_eq!(hook.calls(), 4);
    assert!(uncached.user("ann").is_none());
}

#[tokio::test]
async fn refusals_are_cached_briefly_when_configured() {
    let hook = ann_hook().await;
    let provider = WebhookAuthProvider::new(WebhookConfig::new(hook.url())).unwrap();
    for _ in 0..3 {
        assert!(login(&provider, "ann", "wrong").await.unwrap().is_none());
    }
    assert_eq!(
        hook.calls(),
        1,
        "the same wrong password is answered from the cache"
    );
    assert!(provider.user("ann").is_none(), "a refusal is no user");

    let config = WebhookConfig::new(hook.url()).negative_ttl_ms(0);
    let provider = WebhookAuthProvider::new(config).unwrap();
    for _ in 0..2 {
        assert!(login(&provider, "ann", "wrong").await.unwrap().is_none());
    }
    assert_eq!(hook.calls(), 3);
}

#[tokio::test]
async fn the_cache_holds_at_most_cache_max_usernames() {
    let hook = Hook::start(|_| Reply::Json(200, json!({"ok": true}))).await;
    let provider = WebhookAuthProvider::new(WebhookConfig::new(hook.url()).cache_max(2)).unwrap();
    for user in ["a", "b", "c"] {
        assert!(login(&provider, user, "pw").await.unwrap().is_some());
    }
    assert_eq!(provider.cached(), 2);
    assert!(provider.user("a").is_none(), "the oldest went");
    assert!(provider.user("b").is_some() && provider.user("c").is_some());
    assert!(login(&provider, "a", "pw").await.unwrap().is_some());
    assert_eq!(hook.calls(), 4, "`a` was asked again");
}

#[tokio::test]
async fn reserved_names_and_empty_passwords_are_refused_without_a_call() {
    let hook = Hook::start(|_| Reply::Json(200, json!({"ok": true}))).await;
    let provider = WebhookAuthProvider::new(WebhookConfig::new(hook.url())).unwrap();
    for (user, pw) in [
        ("_ADMIN", "pw"),
        ("", "pw"),
        ("a/b", "pw"),
        ("a*", "pw"),
        ("ann", ""),
    ] {
        assert!(
            login(&provider, user, pw).await.unwrap().is_none(),
            "{user:?}/{pw:?}"
        );
    }
    assert_eq!(hook.calls(), 0);
}
