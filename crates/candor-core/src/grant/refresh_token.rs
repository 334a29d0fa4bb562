//! The refresh token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14).

use super::{GrantContext, TokenResponse, new_access_token};
use crate::access_token;
use crate::clock::rfc3339;
use crate::id_token::{self, IdTokenInput};
use crate::model::{Client, IssuedTokens, RefreshTokenRecord};
use crate::rejection::{Reason, Rejection};
use crate::scope::{self, Scope};
use crate::store::Rotation;
use crate::tokens::{self, Secret, SecretKind, fingerprint, hash_secret};

pub async fn rotate(
    ctx: &GrantContext<'_>,
    client: &Client,
    presented: &str,
    requested_scope: Option<&str>,
    resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    if let Err(defect) = tokens::inspect(presented, SecretKind::RefreshToken) {
        return Err(Rejection::new(Reason::RefreshTokenMalformed)
            .with("defect", defect.code())
            .with("explanation", defect.explain(SecretKind::RefreshToken)));
    }
    let record =
        ctx.store.refresh_token(&hash_secret(presented)).await.map_err(Rejection::store)?.ok_or_else(|| {
            Rejection::new(Reason::RefreshTokenUnknown).with("token_fingerprint", fingerprint(presented))
        })?;
    let grant_id = record.grant_id.clone();
    rotate_record(ctx, client, record, requested_scope, resource)
        .await
        .map_err(|r| super::authorization_code::link_grant(r, grant_id))
}

async fn rotate_record(
    ctx: &GrantContext<'_>,
    client: &Client,
    record: RefreshTokenRecord,
    requested_scope: Option<&str>,
    named_resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    if record.client_id != client.id {
        return Err(Rejection::new(Reason::RefreshTokenIssuedToOtherClient)
            .with("client_id", client.id.clone())
            .with_internal("issued_to", record.client_id.clone()));
    }
    if let Some(revoked_at) = record.revoked_at {
        if let Some(rotated_at) = record.rotated_at {
            // A rotated token presented again after its family was revoked (by an earlier replay of
            // it, or concurrently by another node's): the cause to report is still the reuse.
            return Err(reused(ctx, &record, rotated_at, record.rotated_trace.clone())
                .await
                .with("revoked_at", rfc3339(revoked_at)));
        }
        return Err(Rejection::new(Reason::RefreshTokenRevoked).with("revoked_at", rfc3339(revoked_at)));
    }
    // A configurable grace interval lets a benign race (two tabs refreshing at once, a retry
    // after a lost response) succeed: within it, the rotated token mints a sibling in the same
    // family instead of revoking the family. Off (0) by default.
    let grace = ctx.settings.refresh_reuse_grace;
    let within_grace = |rotated_at: i64| grace > 0 && ctx.now - rotated_at <= grace;
    if let Some(rotated_at) = record.rotated_at
        && !within_grace(rotated_at)
    {
        return Err(reused(ctx, &record, rotated_at, record.rotated_trace.clone()).await);
    }
    if ctx.now >= record.expires_at {
        return Err(Rejection::new(Reason::RefreshTokenExpired)
            .with("issued_at", rfc3339(record.issued_at))
            .with("expired_at", rfc3339(record.expires_at))
            .with("server_time", rfc3339(ctx.now)));
    }
    let granted = Scope::from_stored(&record.scope);
    let scope = match requested_scope {
        None => granted.clone(),
        Some(s) => {
            let requested = Scope::parse(s)?;
            if !requested.is_subset_of(&granted) {
                return Err(Rejection::new(Reason::ScopeBroadened)
                    .with("added", requested.minus(&granted).join(" "))
                    .with("granted", granted.to_string()));
            }
            requested
        }
    };
    // RFC 9449 §5: a bound family is used only with proofs by its key.
    crate::dpop::check_binding(record.dpop_jkt.as_deref(), ctx.dpop_jkt)?;
    // RFC 8707 §2.2: one of the grant's resources; refused before the rotation, which it leaves undone.
    let resource = super::token_resource(ctx, client, named_resource, &record.resources).await?;
    match ctx.store.user(&record.user_id).await.map_err(Rejection::store)? {
        None => return Err(Rejection::new(Reason::UserUnknown)),
        Some(u) if u.disabled => return Err(Rejection::new(Reason::UserDisabled).with_internal("username", u.username)),
        Some(_) => {}
    }
    super::require_consent(ctx, &record.user_id, &client.id, &record.grant_id, &record.scope).await?;

    let access = new_access_token(
        ctx,
        &access_token::Spec {
            grant_id: &record.grant_id,
            client,
            user_id: Some(&record.user_id),
            auth_time: Some(record.auth_time),
            scope: &scope,
            resource: resource.as_ref(),
            dpop_jkt: ctx.dpop_jkt,
        },
    )?;
    let secret = Secret::generate(SecretKind::RefreshToken).map_err(|_| Rejection::internal())?;
    // RFC 6749 §6: the new refresh token's scope is identical to the old one's; the family's
    // absolute expiry is kept, so rotation never extends a grant.
    let next = RefreshTokenRecord {
        hash: secret.hash.clone(),
        issued_at: ctx.now,
        rotated_at: None,
        rotated_trace: None,
        revoked_at: None,
        issued_trace: ctx.trace.to_string(),
        ..record.clone()
    };
    let id_token = if scope.contains(scope::OPENID) {
        Some(id_token::sign(
            ctx.keys,
            ctx.settings,
            &IdTokenInput {
                client,
                user_id: &record.user_id,
                auth_time: record.auth_time,
                nonce: None,
                sid: record.sid.as_deref(),
                access_token: &access.value,
            },
            ctx.now,
        )?)
    } else {
        None
    };
    let issued =
        IssuedTokens { audit: Some(ctx.success_audit(&record.grant_id)), access: access.record, refresh: Some(next) };
    let outcome = if record.rotated_at.is_some() {
        Rotation::AlreadyRotated { rotated_at: record.rotated_at.unwrap_or(ctx.now), rotated_trace: None }
    } else {
        ctx.store.rotate_refresh_token(&record.hash, ctx.now, ctx.trace, &issued).await.map_err(Rejection::store)?
    };
    match outcome {
        Rotation::Rotated => {}
        Rotation::AlreadyRotated { rotated_at, rotated_trace } if within_grace(rotated_at) => {
            // The family may have been revoked since the token was read (a replay elsewhere).
            if !ctx.store.insert_sibling(&record.hash, &issued).await.map_err(Rejection::store)? {
                return Err(reused(ctx, &record, rotated_at, rotated_trace).await);
            }
        }
        Rotation::AlreadyRotated { rotated_at, rotated_trace } => {
            return Err(reused(ctx, &record, rotated_at, rotated_trace).await);
        }
        Rotation::Revoked => return Err(Rejection::new(Reason::RefreshTokenRevoked)),
        Rotation::Missing => return Err(Rejection::new(Reason::RefreshTokenUnknown)),
    }
    Ok(TokenResponse {
        token_type: access.token_type,
        access_token: access.value,
        expires_in: access.expires_in,
        refresh_token: Some(secret.value),
        id_token,
        scope: access.scope.to_string(),
        grant_id: record.grant_id,
    })
}

/// RFC 9700 §4.14.2: a rotated token presented again means it leaked or the client lost track:
/// revoke the whole family, the legitimate client's current token included.
async fn reused(
    ctx: &GrantContext<'_>,
    record: &RefreshTokenRecord,
    rotated_at: i64,
    rotated_trace: Option<String>,
) -> Rejection {
    let r = Rejection::new(Reason::RefreshTokenReused)
        .with("rotated_at", rfc3339(rotated_at))
        .with("seconds_since_rotation", ctx.now - rotated_at)
        .with("rotated_by_trace", rotated_trace.unwrap_or_default());
    super::revoke_after_replay(ctx, &record.grant_id, r, "family_revoked").await
}
