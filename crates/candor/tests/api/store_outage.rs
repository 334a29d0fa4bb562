//! A store that goes away and comes back (PostgreSQL only: the test cuts the server's
//! connections to the database with a proxy of its own). While the store is gone, requests get
//! 503 `store_unavailable` with `Retry-After`, and nothing is issued or rotated; when it returns,
//! the same requests succeed without a restart.

use crate::helpers::*;
use candor_server::Disclosure;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to the database that can be cut (every connection dropped, new ones refused) and
/// restored on the same port.
struct Proxy {
    port: u16,
    upstream: String,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy =
            Arc::new(Proxy { port: listener.local_addr().unwrap().port(), upstream, tasks: Mutex::new(vec![]) });
        proxy.serve(listener);
        proxy
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        let me = Arc::clone(self);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = me.upstream.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                me.tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Drops every connection and stops listening: the database is gone.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn restore(self: &Arc<Self>) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

async fn client_credentials(app: &TestApp) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    app.token(&[("grant_type", "client_credentials"), ("scope", "api.read")], Some(SERVICE)).await
}

async fn rotate(app: &TestApp, refresh: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some(WEB)).await
}

fn assert_unavailable(status: StatusCode, body: &Value, headers: &reqwest::header::HeaderMap) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert_reason(body, "store_unavailable", "temporarily_unavailable");
    assert_eq!(headers["retry-after"], "5");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    // The store's message is for the operator's log, not for the client.
    assert!(body["facts"].get("store").is_none(), "{body:#}");
}

#[tokio::test]
async fn a_lost_database_gives_503_issues_nothing_and_recovers_without_a_restart() {
    let direct = candor_store::scratch::test_database_url().unwrap().expect("the PostgreSQL suite has a URL");
    let (host, port) = {
        let after_at = direct.split('@').nth(1).unwrap_or(&direct);
        let authority = after_at.trim_start_matches("postgres://").split('/').next().unwrap().to_string();
        let (h, p) = authority.rsplit_once(':').unwrap_or((&authority, "5432"));
        (h.to_string(), p.to_string())
    };
    let proxy = Proxy::start(format!("{host}:{port}")).await;
    let through = format!("127.0.0.1:{}", proxy.port);
    let app =
        spawn_app_on(|_| {}, Disclosure::Detailed, |url| url.replacen(&format!("{host}:{port}"), &through, 1)).await;

    // Up: a refresh token to rotate later, and a token by client credentials.
    let refresh = app.tokens("openid offline_access").await["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(client_credentials(&app).await.0, StatusCode::OK);

    proxy.cut();
    let (status, body, headers) = client_credentials(&app).await;
    assert_unavailable(status, &body, &headers);
    let (status, body, headers) = rotate(&app, &refresh).await;
    assert_unavailable(status, &body, &headers);

    proxy.restore().await;
    // The refresh token was not rotated while the store was gone: it still works, once.
    let (status, body, _) = rotate(&app, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert!(body["refresh_token"].as_str().is_some_and(|r| r != refresh));
    assert_eq!(client_credentials(&app).await.0, StatusCode::OK);
    assert_eq!(rotate(&app, &refresh).await.1["reason"], "refresh_token_reused");
}
