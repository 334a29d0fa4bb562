//! The DPoP header (RFC 9449 §4): reading the one proof a request may carry, checking it with
//! the core's rules, and using its `jti` up in the store, on any node.

use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue};
use candor_core::dpop::{self, Expect, Proof};
use candor_core::rejection::{Reason, Rejection};
use candor_core::tokens::safe_identifier;

/// The header's name (RFC 9449 §4.1); also that of the nonce header (§8.1).
pub const HEADER: &str = "dpop";
pub const NONCE_HEADER: &str = "dpop-nonce";

/// The request's checked DPoP proof for `method` at `path`, or `None` when it sent none.
/// At a resource, `access_token` is the token the proof must carry the hash of.
pub async fn proof(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<Proof>, Rejection> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(
            Rejection::new(Reason::DpopProofInvalid).with("problem", "more than one DPoP header (RFC 9449 §4.3)")
        );
    }
    let text = value
        .to_str()
        .map_err(|_| Rejection::new(Reason::DpopProofInvalid).with("problem", "the DPoP header is not ASCII"))?;
    let keys = state.keys();
    let nonce = state.settings.dpop_nonce.then(|| keys.nonce_key());
    let url = format!("{}{path}", state.settings.base());
    let expect =
        Expect { method, url: &url, now: state.now(), leeway: state.settings.dpop_leeway, access_token, nonce };
    let proof = dpop::verify(text.trim(), &expect)?;
    let until = proof.remember_until(state.settings.dpop_leeway);
    if !state.store.use_dpop_proof(&proof.jkt, &proof.jti, until).await.map_err(Rejection::store)? {
        return Err(Rejection::new(Reason::DpopProofReplayed).with("jti", safe_identifier(&proof.jti)));
    }
    Ok(Some(proof))
}

/// Adds the current nonce (RFC 9449 §8.1) to an answer, when nonces are on.
pub fn add_nonce(state: &AppState, headers: &mut HeaderMap) {
    if state.settings.dpop_nonce
        && let Ok(v) = HeaderValue::from_str(&state.keys().nonce_key().current(state.now()))
    {
        headers.insert(NONCE_HEADER, v);
    }
}

/// Whether a refusal is about DPoP (answered with a `DPoP` challenge at resources).
pub fn is_dpop_reason(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::DpopProofInvalid
            | Reason::DpopProofWrongTarget
            | Reason::DpopProofStale
            | Reason::DpopProofReplayed
            | Reason::DpopNonceRequired
            | Reason::DpopKeyMismatch
            | Reason::DpopProofMissing
            | Reason::AccessTokenDpopBound
    )
}
