//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6, OIDC Core §3.1.3).

use super::{GrantContext, TokenResponse, UserGrant};
use crate::clock::{UnixTime, rfc3339};
use crate::model::{Client, CodeRecord};
use crate::pkce::{CodeVerifier, s256};
use crate::redirect_uri;
use crate::rejection::{Reason, Rejection};
use crate::store::Redemption;
use crate::tokens::{self, Defect, SecretKind, fingerprint, hash_secret};

/// What a code exchange presents (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8707 §2.2).
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    /// The one resource the access token is for, if the request names one.
    pub resource: Option<&'a str>,
}

/// Exchanges a code for tokens. Every rule is checked before the atomic redemption, and the
/// tokens are stored in the same transaction that marks the code redeemed.
pub async fn exchange(
    ctx: &GrantContext<'_>,
    client: &Client,
    presented: &Presented<'_>,
) -> Result<TokenResponse, Rejection> {
    let record = find_code(ctx, presented.code).await?;
    let grant_id = record.grant_id.clone();
    redeem(ctx, client, record, presented).await.map_err(|r| link_grant(r, grant_id))
}

/// Links a rejection to the grant's timeline, unless the grant belongs to another client.
pub(crate) fn link_grant(r: Rejection, grant_id: String) -> Rejection {
    match r.reason {
        Reason::CodeIssuedToOtherClient
        | Reason::RefreshTokenIssuedToOtherClient
        | Reason::DeviceCodeIssuedToOtherClient => r,
        _ => r.with_internal("grant_id", grant_id),
    }
}

async fn redeem(
    ctx: &GrantContext<'_>,
    client: &Client,
    record: CodeRecord,
    presented: &Presented<'_>,
) -> Result<TokenResponse, Rejection> {
    // RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated
    // confidential client, or if the client is public, ensure that the code was issued to
    // "client_id" in the request". Checked first: nothing about another client's code is told.
    if record.client_id != client.id {
        return Err(Rejection::new(Reason::CodeIssuedToOtherClient)
            .with("client_id", client.id.clone())
            .with_internal("issued_to", record.client_id.clone()));
    }

    // RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization
    // server MUST deny the request and SHOULD revoke (when possible) all tokens previously
    // issued based on that authorization code."
    if let Some(redeemed_at) = record.redeemed_at {
        return Err(already_redeemed(ctx, &record, redeemed_at, record.redeemed_trace.clone()).await);
    }
    if let Some(at) = record.session_ended_at {
        return Err(session_ended(ctx, &record, at));
    }

    if ctx.now >= record.expires_at {
        return Err(Rejection::new(Reason::CodeExpired)
            .with("issued_at", rfc3339(record.issued_at))
            .with("expired_at", rfc3339(record.expires_at))
            .with("server_time", rfc3339(ctx.now))
            .with("lifetime_seconds", record.expires_at - record.issued_at)
            .with("late_by_seconds", ctx.now - record.expires_at));
    }

    check_redirect_uri(&record, presented.redirect_uri)?;
    check_pkce(ctx, &record, presented.code_verifier).await?;
    // Before the redemption: a token request that names the wrong resource, or comes without the
    // key the code is bound to (RFC 9449 §10), does not use up the code.
    crate::dpop::check_binding(record.dpop_jkt.as_deref(), ctx.dpop_jkt)?;
    let resource = super::token_resource(ctx, client, presented.resource, &record.resources).await?;

    let grant = UserGrant {
        grant_id: &record.grant_id,
        user_id: &record.user_id,
        auth_time: record.auth_time,
        scope: &record.scope,
        resources: &record.resources,
        nonce: record.nonce.as_deref(),
        sid: record.sid.as_deref(),
    };
    super::require_user(ctx, client, &grant).await?;
    let (issued, response) = super::user_tokens(ctx, client, &grant, resource.as_ref())?;
    match ctx.store.redeem_code(&record.hash, ctx.now, ctx.trace, &issued).await.map_err(Rejection::store)? {
        Redemption::Redeemed => {}
        Redemption::AlreadyRedeemed { redeemed_at, redeemed_trace } => {
            // Lost a concurrent race: the winner's tokens are stored; revoke them as for any replay.
            return Err(already_redeemed(ctx, &record, redeemed_at, redeemed_trace).await);
        }
        // Lost a race with the logout of the code's session: nothing was stored.
        Redemption::SessionEnded { at } => return Err(session_ended(ctx, &record, at)),
        Redemption::Missing => return Err(Rejection::new(Reason::CodeUnknown)),
    }
    Ok(response)
}

/// The code's session was logged out of before the code was redeemed (its tokens would outlive
/// the logout that was meant to end them).
fn session_ended(ctx: &GrantContext<'_>, record: &CodeRecord, at: UnixTime) -> Rejection {
    Rejection::new(Reason::CodeSessionEnded)
        .with("issued_at", rfc3339(record.issued_at))
        .with("session_ended_at", rfc3339(at))
        .with("server_time", rfc3339(ctx.now))
}

async fn find_code(ctx: &GrantContext<'_>, code: &str) -> Result<CodeRecord, Rejection> {
    if let Err(defect) = tokens::inspect(code, SecretKind::AuthorizationCode) {
        // The value as issued may still be recoverable (fragment, whitespace...): if so, say
        // which issued code it was, so the developer knows the code itself was fine.
        let recovered = tokens::issued_head(code, SecretKind::AuthorizationCode);
        let mut r = Rejection::new(Reason::CodeMalformed)
            .with("defect", defect.code())
            .with("explanation", defect.explain(SecretKind::AuthorizationCode));
        if let Defect::UrlFragment { suffix } | Defect::ParameterGluedOn { suffix } = &defect {
            r = r.with("suffix", suffix.clone());
        }
        if let Some(original) = recovered
            && let Ok(Some(rec)) = ctx.store.code(&hash_secret(original)).await
        {
            r = r.with("issued_code_found", true).with("issued_at", rfc3339(rec.issued_at));
        }
        return Err(r);
    }
    ctx.store
        .code(&hash_secret(code))
        .await
        .map_err(Rejection::store)?
        .ok_or_else(|| Rejection::new(Reason::CodeUnknown).with("code_fingerprint", fingerprint(code)))
}

async fn already_redeemed(
    ctx: &GrantContext<'_>,
    record: &CodeRecord,
    redeemed_at: i64,
    redeemed_trace: Option<String>,
) -> Rejection {
    let r = Rejection::new(Reason::CodeAlreadyRedeemed)
        .with("redeemed_at", rfc3339(redeemed_at))
        .with("seconds_since_redemption", ctx.now - redeemed_at)
        .with("redeemed_by_trace", redeemed_trace.unwrap_or_default());
    super::revoke_after_replay(ctx, &record.grant_id, r, "grant_revoked").await
}

fn check_redirect_uri(record: &CodeRecord, received: Option<&str>) -> Result<(), Rejection> {
    match received {
        None if record.redirect_uri_sent => Err(Rejection::new(Reason::RedirectUriMissingAtToken)
            .with_detail("sent_to_authorize", record.redirect_uri.clone())),
        None => Ok(()),
        // "their values MUST be identical" (RFC 6749 §4.1.3): a string comparison.
        Some(uri) if uri == record.redirect_uri => Ok(()),
        Some(uri) => Err(Rejection::new(Reason::RedirectUriMismatch)
            .with("difference", redirect_uri::difference(&record.redirect_uri, uri).as_str())
            .with_detail("expected", record.redirect_uri.clone())
            .with_detail("received", uri.to_string())),
    }
}

async fn check_pkce(ctx: &GrantContext<'_>, record: &CodeRecord, verifier: Option<&str>) -> Result<(), Rejection> {
    match (&record.code_challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(Rejection::new(Reason::PkceVerifierUnexpected)),
        (Some(ch), None) => {
            Err(Rejection::new(Reason::PkceVerifierMissing).with("code_challenge_method", ch.method.as_str()))
        }
        (Some(ch), Some(v)) => {
            let verifier = CodeVerifier::parse(v)?;
            if ch.is_satisfied_by(&verifier) {
                return Ok(());
            }
            let mut r = Rejection::new(Reason::PkceVerifierMismatch)
                .with("code_challenge_method", ch.method.as_str())
                .with_detail("expected_challenge", ch.value.clone())
                .with_detail("challenge_of_received_verifier", s256(verifier.as_str()));
            // Was this verifier made for another pending request of the same client? Then the app
            // mixed up (or regenerated) verifiers between two authorization requests.
            if let Ok(pending) = ctx.store.pending_codes(&record.client_id, ctx.now, 50).await
                && let Some(other) = pending.iter().find(|p| {
                    p.hash != record.hash && p.code_challenge.as_ref().is_some_and(|c| c.is_satisfied_by(&verifier))
                })
            {
                r = r
                    .with("verifier_matches_other_request", true)
                    .with("other_request_issued_at", rfc3339(other.issued_at));
            }
            Err(r)
        }
    }
}
