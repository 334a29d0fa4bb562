//! GET|POST /userinfo (OIDC Core §5.3) with a bearer access token (RFC 6750).

use crate::authorize::is_form;
use crate::respond::{Trace, bearer_error, no_store};
use crate::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_core::params::{Encoding, Params};
use candor_core::rejection::{Reason, Rejection};
use std::sync::Arc;

/// RFC 6750 §2.1 (header) or §2.2 (form body); §2: "Clients MUST NOT use more than one method".
/// RFC 9449 §7.1: a DPoP-bound token comes in the header with the `DPoP` scheme (then `true`).
fn bearer(method: &Method, headers: &HeaderMap, body: &Bytes) -> Result<(String, bool), Rejection> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| Rejection::new(Reason::AccessTokenMalformed).with("problem", "the header is not ASCII"))?;
            match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Some((token.trim().to_string(), false))
                }
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => Some((token.trim().to_string(), true)),
                _ => {
                    return Err(Rejection::new(Reason::AccessTokenMissing)
                        .with("problem", "the Authorization header uses neither the Bearer nor the DPoP scheme"));
                }
            }
        }
    };
    let from_body = if method == Method::POST && is_form(headers) {
        Params::from_urlencoded(body, Encoding::Form)?.get("access_token")?.map(str::to_string)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => {
            Err(Rejection::invalid("access_token", "sent both in the Authorization header and the body"))
        }
        (Some(t), None) => Ok(t),
        (None, Some(t)) => Ok((t, false)),
        (None, None) => Err(Rejection::new(Reason::AccessTokenMissing)),
    }
}

pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    Extension(trace): Extension<Trace>,
    method: Method,
    headers: HeaderMap,
    body: crate::respond::Body,
) -> Response {
    let result = async {
        let (token, dpop_scheme) = bearer(&method, &headers, &crate::respond::read_body(body)?)?;
        let proof = if dpop_scheme {
            let proof = crate::dpop::proof(&state, &headers, method.as_str(), "/userinfo", Some(&token)).await?;
            Some(proof.ok_or_else(|| {
                Rejection::new(Reason::DpopProofInvalid)
                    .with("problem", "the Authorization header uses the DPoP scheme but no DPoP header carries a proof")
            })?)
        } else {
            None
        };
        let keys = state.keys();
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        candor_core::userinfo::claims(state.store.as_ref(), state.issuer(&keys), &token, jkt, state.now()).await
    }
    .await;
    match result {
        Ok(claims) => {
            let mut h = HeaderMap::new();
            no_store(&mut h);
            (StatusCode::OK, h, axum::Json(claims)).into_response()
        }
        Err(r) => bearer_error(&state, &r, &trace),
    }
}
