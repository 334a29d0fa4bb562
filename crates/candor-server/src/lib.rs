//! Candor's HTTP server: routes, the trace id on every response, and serving.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo))]

pub mod admin;
pub mod authorize;
pub mod cookies;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod html;
pub mod logout;
pub mod metrics;
pub mod par;
mod passwords;
pub mod ratelimit;
pub mod registration;
pub mod respond;
pub mod state;
pub mod throttle;
pub mod token;
pub mod tokeninfo;
pub mod userinfo;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use candor_core::store::{StoreError, SweepPolicy, Swept};
use respond::{TRACE_HEADER, Trace};
use state::AppState;
use std::sync::Arc;
use std::time::Duration;

pub use state::{Disclosure, ensure_keys, rotate_keys};

/// The largest request body accepted (token requests are a few hundred bytes).
pub const BODY_LIMIT: usize = 64 * 1024;
/// The largest total of header fields accepted, names and values (Node.js's default too).
pub const HEADER_LIMIT: usize = 16 * 1024;

/// Refuses a request whose header fields add up to more than `HEADER_LIMIT` with 431 and
/// `headers_too_large`, naming the largest field (never its value: it may be a cookie or a
/// credential). A page for the browser's endpoints, where bloated cookies are the usual cause;
/// JSON elsewhere.
async fn header_limit(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let size = |(name, value): (&axum::http::HeaderName, &HeaderValue)| name.as_str().len() + value.len() + 4;
    let total: usize = req.headers().iter().map(size).sum();
    if total <= HEADER_LIMIT {
        return next.run(req).await;
    }
    let mut largest: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for field in req.headers().iter() {
        *largest.entry(field.0.as_str()).or_default() += size(field);
    }
    let (name, bytes) = largest.into_iter().max_by_key(|(_, n)| *n).unwrap_or(("none", 0));
    let r = candor_core::Rejection::new(candor_core::Reason::HeadersTooLarge)
        .with("total_bytes", total)
        .with("limit_bytes", HEADER_LIMIT)
        .with("largest_header", name.to_string())
        .with("largest_header_bytes", bytes);
    let trace = req.extensions().get::<Trace>().cloned().unwrap_or_else(|| Trace("no-trace".into()));
    let path = req.uri().path();
    if path.starts_with("/authorize") || path.starts_with("/interaction/") || path.starts_with("/logout") {
        respond::error_page(&state, &r, &trace)
    } else {
        let body = axum::Json(respond::error_json(&state, &r, &trace));
        respond::refused((axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, body).into_response(), &r, false)
    }
}

async fn trace_layer(mut req: Request, next: Next) -> Response {
    let id = candor_core::tokens::ordered_id().unwrap_or_else(|_| "no-trace".into());
    req.extensions_mut().insert(Trace(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(TRACE_HEADER, v);
    }
    response
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/jwks.json", get(discovery::jwks))
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/interaction/{id}", get(authorize::show))
        .route("/interaction/{id}/login", post(authorize::login))
        .route("/interaction/{id}/consent", post(authorize::consent))
        .route("/token", post(token::token))
        .route("/introspect", post(tokeninfo::introspect))
        .route("/revoke", post(tokeninfo::revoke))
        .route("/par", post(par::push))
        .route("/device_authorization", post(device::authorization))
        .route("/device", get(device::page_get).post(device::page_post))
        .route(candor_core::logout::END_SESSION_PATH, get(logout::get).post(logout::post))
        .route("/logout/confirm", post(logout::confirm))
        .route(candor_core::registration::REGISTRATION_PATH, post(registration::register))
        .route("/register/{client_id}", get(registration::read).put(registration::update).delete(registration::delete))
        .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .route("/errors/", get(discovery::reason_index))
        .route("/errors/{reason}", get(discovery::reason_page))
        .route("/assets/candor.css", get(authorize::stylesheet))
        .route("/explain", post(admin::client_explain))
        .route("/admin/traces/{id}", get(admin::trace))
        .route("/admin/rejections", get(admin::rejections))
        .route("/metrics", get(metrics::endpoint))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), header_limit))
        .layer(middleware::from_fn_with_state(state.clone(), admin::audit_layer))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::layer))
        .layer(middleware::from_fn(trace_layer))
        .with_state(state)
}

/// Reloads signing keys every `every`, so a rotation made elsewhere is picked up.
pub fn spawn_key_reloader(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.reload_keys().await {
                tracing::error!(error = %e, "reloading signing keys failed; keeping the current ones");
            }
        }
    })
}

/// Rows one sweep statement removes at most (per kind of record). Each statement is a write
/// transaction that token requests wait behind: 250 rows take 2–3 ms (docs/performance.md).
const SWEEP_BATCH: u32 = 250;
/// The pause between two sweeps while there is a backlog, for the token requests' writes.
const SWEEP_PAUSE: Duration = Duration::from_millis(5);

/// Removes dead rows past their retention every `every`, in bounded batches. While a batch comes
/// back full, the next follows after a short pause, for at most `every` (then the next tick goes
/// on at once): a sustained load makes rows die as fast as it makes them, thousands per second,
/// and a fixed number of batches per tick would fall behind for good.
pub fn spawn_sweeper(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep_backlog(&state, SWEEP_BATCH, SWEEP_PAUSE, every).await {
                Ok(swept) if swept.total() > 0 => tracing::debug!(?swept, "swept expired records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping expired records failed; will retry"),
            }
        }
    })
}

/// Sweeps until no batch comes back full or `budget` has passed; returns what it removed.
pub async fn sweep_backlog(
    state: &AppState,
    batch: u32,
    pause: Duration,
    budget: Duration,
) -> Result<Swept, StoreError> {
    let s = &state.settings;
    let until = tokio::time::Instant::now() + budget;
    let mut total = Swept::default();
    loop {
        let policy = SweepPolicy::new(state.now(), s.tombstone_retention, s.audit_retention, batch)
            .with_token_lifetimes(s.access_token_lifetime, s.refresh_token_lifetime);
        let swept = state.store.sweep(&policy).await?;
        total = total.plus(&swept);
        if !swept.filled(batch) || tokio::time::Instant::now() + pause >= until {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let every = Duration::from_secs(state.settings.key_reload_interval.clamp(1, 3600).unsigned_abs());
    let reloader = spawn_key_reloader(state.clone(), every);
    let sweeper = spawn_sweeper(state.clone(), Duration::from_secs(60));
    // The peer's address reaches the handlers (login throttling by client address).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    reloader.abort();
    sweeper.abort();
    result
}
