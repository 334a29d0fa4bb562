//! `/metrics` in the Prometheus text format: requests by endpoint and outcome, refusals by
//! reason, latency histograms by endpoint.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use candor_core::Reason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    endpoint: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

/// Set on a response by the code that refused the request; read by the metrics and audit layers.
#[derive(Clone, Debug)]
pub struct Refused {
    pub rejection: candor_core::Rejection,
    /// The handler already wrote the audit record (the token endpoint writes richer ones).
    pub audited: bool,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let rejections = Family::<ReasonLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms .. ~4 s
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        registry.register("candor_requests", "HTTP requests by endpoint and outcome", requests.clone());
        registry.register("candor_rejections", "Refused requests by endpoint and reason", rejections.clone());
        registry.register("candor_request_duration_seconds", "Time to answer, by endpoint", latency.clone());
        Metrics { registry, requests, rejections, latency }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Counts every request; the endpoint is the route pattern, never the raw path.
pub async fn layer(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    let refused: Option<Reason> = response.extensions().get::<Refused>().map(|r| r.rejection.reason);
    let outcome = if refused.is_some() {
        "refused"
    } else if status.is_server_error() {
        "error"
    } else if status.is_client_error() {
        "refused"
    } else {
        "ok"
    };
    metrics.requests.get_or_create(&RequestLabels { endpoint: endpoint.clone(), outcome: outcome.into() }).inc();
    if let Some(reason) = refused {
        metrics
            .rejections
            .get_or_create(&ReasonLabels { endpoint: endpoint.clone(), reason: reason.code().into() })
            .inc();
    }
    metrics.latency.get_or_create(&EndpointLabels { endpoint }).observe(started.elapsed().as_secs_f64());
    response
}

pub async fn endpoint(State(state): State<Arc<crate::state::AppState>>) -> Response {
    let mut response = (StatusCode::OK, state.metrics.render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
