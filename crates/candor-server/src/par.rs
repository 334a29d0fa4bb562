//! POST /par: pushed authorization requests (RFC 9126). The client authenticates as at the token
//! endpoint; the request is validated as /authorize would and answered with a `request_uri`.

use crate::respond::{Trace, no_store};
use crate::state::AppState;
use crate::token::{client_request, refuse};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use candor_core::audit::AuditRecord;
use candor_core::par;
use candor_core::rejection::Rejection;
use serde_json::json;
use std::sync::Arc;

pub async fn push(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let now = state.now();
    let mut audit = AuditRecord::success(&trace.0, now, "par");
    let pushed = async {
        let body = crate::respond::read_body(body)?;
        let (params, client, _) = client_request(&state, "/par", &headers, &body, &mut audit).await?;
        // RFC 9449 §10.1: a DPoP proof with the push binds the code to its key.
        let proof = crate::dpop::proof(&state, &headers, "POST", "/par", None).await?;
        let pushed = par::push(&params, &client, now, proof.as_ref().map(|p| p.jkt.as_str()))?;
        // Stored before the answer: the request_uri the client receives exists.
        state.store.insert_pushed_request(&pushed.record).await.map_err(Rejection::store)?;
        Ok::<_, Rejection>(pushed)
    }
    .await;
    match pushed {
        Ok(pushed) => {
            tracing::info!(trace = %trace.0, client = %pushed.record.client_id, "authorization request pushed");
            let mut h = HeaderMap::new();
            no_store(&mut h);
            if headers.contains_key(crate::dpop::HEADER) {
                crate::dpop::add_nonce(&state, &mut h);
            }
            // RFC 9126 §2.2: 201 Created with the request_uri and its lifetime.
            let body = json!({ "request_uri": pushed.request_uri, "expires_in": par::LIFETIME });
            (StatusCode::CREATED, h, axum::Json(body)).into_response()
        }
        Err(r) => refuse(&state, &trace, &headers, audit, &r).await,
    }
}
