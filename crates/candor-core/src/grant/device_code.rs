//! The device code grant (RFC 8628 §3.4-3.5): the device polls with its device code until the
//! user has decided at the verification page, then exchanges it, once, for tokens.

use super::authorization_code::link_grant;
use super::{GrantContext, TokenResponse, UserGrant};
use crate::clock::rfc3339;
use crate::device::{SLOW_DOWN_STEP, UserCode};
use crate::model::{Client, DeviceCodeRecord, DeviceStatus};
use crate::rejection::{Reason, Rejection};
use crate::store::Redemption;
use crate::tokens::{self, SecretKind, fingerprint, hash_secret};

/// Answers one poll of `device_code` by the authenticated `client`. `resource` is the one
/// resource the token request names (RFC 8707).
pub async fn exchange(
    ctx: &GrantContext<'_>,
    client: &Client,
    device_code: &str,
    resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    let record = find(ctx, device_code).await?;
    let grant_id = record.grant_id.clone();
    poll(ctx, client, record, resource).await.map_err(|r| link_grant(r, grant_id))
}

async fn find(ctx: &GrantContext<'_>, device_code: &str) -> Result<DeviceCodeRecord, Rejection> {
    if let Err(defect) = tokens::inspect(device_code, SecretKind::DeviceCode) {
        let mut r = Rejection::new(Reason::DeviceCodeUnknown)
            .with("defect", defect.code())
            .with("explanation", defect.explain(SecretKind::DeviceCode));
        if UserCode::parse(device_code).is_ok() {
            r = r.with("problem", "this is a user_code (the code for the user to enter), not the device_code");
        }
        return Err(r);
    }
    ctx.store.device_code(&hash_secret(device_code)).await.map_err(Rejection::store)?.ok_or_else(|| {
        Rejection::new(Reason::DeviceCodeUnknown).with("device_code_fingerprint", fingerprint(device_code))
    })
}

async fn poll(
    ctx: &GrantContext<'_>,
    client: &Client,
    record: DeviceCodeRecord,
    resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    // RFC 8628 §3.4: the device code was issued to the client that polls with it. Checked first:
    // nothing about another client's authorization is told.
    if record.client_id != client.id {
        return Err(Rejection::new(Reason::DeviceCodeIssuedToOtherClient)
            .with("client_id", client.id.clone())
            .with_internal("issued_to", record.client_id.clone()));
    }
    if let Some(redeemed_at) = record.redeemed_at {
        return Err(already_used(ctx, &record, redeemed_at, record.redeemed_trace.clone()).await);
    }
    if ctx.now >= record.expires_at {
        let mut r = Rejection::new(Reason::DeviceCodeExpired)
            .with("issued_at", rfc3339(record.issued_at))
            .with("expired_at", rfc3339(record.expires_at))
            .with("server_time", rfc3339(ctx.now))
            .with("lifetime_seconds", record.expires_at - record.issued_at)
            .with("status", record.status.as_str());
        if record.status == DeviceStatus::Approved {
            r = r.with("problem", "the user approved, but the device did not exchange the code before it expired");
        }
        return Err(r);
    }
    match record.status {
        DeviceStatus::Denied => {
            let mut r = Rejection::new(Reason::DeviceAccessDenied);
            if let Some(at) = record.decided_at {
                r = r.with("denied_at", rfc3339(at));
            }
            Err(r)
        }
        DeviceStatus::Pending => Err(pending(ctx, &record).await),
        DeviceStatus::Approved => redeem(ctx, client, &record, resource).await,
    }
}

/// The answer to a poll before the user decided: keep polling, or slow down (RFC 8628 §3.5).
async fn pending(ctx: &GrantContext<'_>, record: &DeviceCodeRecord) -> Rejection {
    let expires_in = record.expires_at - ctx.now;
    match ctx.store.poll_device_code(&record.hash, ctx.now).await {
        Err(e) => Rejection::store(e),
        // Decided between the read and the poll: the next poll finds the decision.
        Ok(None) => Rejection::new(Reason::DeviceAuthorizationPending).with("expires_in", expires_in),
        Ok(Some(poll)) if poll.too_fast(ctx.now) => {
            let since = poll.previous.map_or(0, |p| ctx.now - p);
            Rejection::new(Reason::DevicePollingTooFast)
                .with("seconds_since_last_poll", since)
                .with("interval_was", poll.interval - SLOW_DOWN_STEP)
                .with("interval", poll.interval)
                .with("expires_in", expires_in)
        }
        Ok(Some(poll)) => Rejection::new(Reason::DeviceAuthorizationPending)
            .with("interval", poll.interval)
            .with("expires_in", expires_in),
    }
}

async fn redeem(
    ctx: &GrantContext<'_>,
    client: &Client,
    record: &DeviceCodeRecord,
    named_resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    let (Some(user_id), Some(auth_time)) = (record.user_id.as_deref(), record.auth_time) else {
        return Err(Rejection::internal().with_internal("device_code", "approved without a user"));
    };
    // Before the redemption: a token request naming the wrong resource does not use up the code.
    let resource = super::token_resource(ctx, client, named_resource, &record.resources).await?;
    let grant = UserGrant {
        grant_id: &record.grant_id,
        user_id,
        auth_time,
        scope: &record.scope,
        resources: &record.resources,
        nonce: None,
        // The device is not the browser that approved it: its tokens outlive that session.
        sid: None,
    };
    super::require_user(ctx, client, &grant).await?;
    let (issued, response) = super::user_tokens(ctx, client, &grant, resource.as_ref())?;
    match ctx.store.redeem_device_code(&record.hash, ctx.now, ctx.trace, &issued).await.map_err(Rejection::store)? {
        Redemption::Redeemed => Ok(response),
        // Lost a concurrent race: the winner's tokens are stored; revoke them as for any replay.
        Redemption::AlreadyRedeemed { redeemed_at, redeemed_trace } => {
            Err(already_used(ctx, record, redeemed_at, redeemed_trace).await)
        }
        // A device code belongs to no browser session: its store never answers this.
        Redemption::SessionEnded { .. } => {
            Err(Rejection::internal().with_internal("redemption", "session_ended for a device code"))
        }
        Redemption::Missing => Err(Rejection::new(Reason::DeviceCodeUnknown)),
    }
}

/// A second exchange of one device code: as for an authorization code used twice (RFC 6749
/// §4.1.2), the tokens of the first are revoked, since one of the two holders is not the device.
async fn already_used(
    ctx: &GrantContext<'_>,
    record: &DeviceCodeRecord,
    redeemed_at: i64,
    redeemed_trace: Option<String>,
) -> Rejection {
    let r = Rejection::new(Reason::DeviceCodeAlreadyUsed)
        .with("redeemed_at", rfc3339(redeemed_at))
        .with("seconds_since_redemption", ctx.now - redeemed_at)
        .with("redeemed_by_trace", redeemed_trace.unwrap_or_default());
    super::revoke_after_replay(ctx, &record.grant_id, r, "grant_revoked").await
}
