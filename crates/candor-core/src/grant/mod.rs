//! The token endpoint's grants, one module each, chosen by matching `GrantRequest`.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use crate::access_token::{self, Minted};
use crate::audit::AuditRecord;
use crate::clock::UnixTime;
use crate::id_token::{self, IdTokenInput};
use crate::keys::KeyRing;
use crate::model::{Client, GrantType, IssuedTokens, RefreshTokenRecord, Resource};
use crate::params::Params;
use crate::rejection::{Reason, Rejection};
use crate::resource;
use crate::scope::{self, Scope};
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::{Secret, SecretKind};
use serde::Serialize;

/// A parsed token request, one variant per grant.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
    /// RFC 8628 §3.4.
    DeviceCode {
        device_code: String,
    },
}

impl GrantRequest {
    pub fn parse(params: &Params) -> Result<GrantRequest, Rejection> {
        let grant_type = params.require("grant_type")?;
        let owned = |v: Option<&str>| v.map(str::to_string);
        match GrantType::parse(grant_type) {
            Some(GrantType::AuthorizationCode) => Ok(GrantRequest::AuthorizationCode {
                code: params.require("code")?.to_string(),
                redirect_uri: owned(params.get("redirect_uri")?),
                code_verifier: owned(params.get("code_verifier")?),
            }),
            Some(GrantType::RefreshToken) => Ok(GrantRequest::RefreshToken {
                refresh_token: params.require("refresh_token")?.to_string(),
                scope: owned(params.get("scope")?),
            }),
            Some(GrantType::ClientCredentials) => {
                Ok(GrantRequest::ClientCredentials { scope: owned(params.get("scope")?) })
            }
            Some(GrantType::DeviceCode) => {
                Ok(GrantRequest::DeviceCode { device_code: params.require("device_code")?.to_string() })
            }
            None => {
                let mut r = Rejection::new(Reason::GrantTypeUnsupported).with("grant_type", grant_type.to_string());
                if let Some(close) = GrantType::ALL.iter().find(|g| {
                    g.as_str().eq_ignore_ascii_case(grant_type.trim())
                        || g.as_str().replace('_', "-") == grant_type
                        || g.short_name() == grant_type.trim()
                }) {
                    r = r.with("did_you_mean", close.as_str());
                }
                Err(r.with("supported", GrantType::ALL.map(GrantType::as_str).join(" ")))
            }
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            GrantRequest::DeviceCode { .. } => GrantType::DeviceCode,
        }
    }
}

/// What every grant needs: the store, the keys, the settings, the time and the trace id.
pub struct GrantContext<'a> {
    pub store: &'a dyn Store,
    pub keys: &'a KeyRing,
    pub settings: &'a Settings,
    pub now: UnixTime,
    pub trace: &'a str,
    /// The audit record of the request so far; a grant that issues tokens stores it with them.
    pub audit: &'a AuditRecord,
    /// The thumbprint of the key of the request's checked DPoP proof (RFC 9449), if it had one:
    /// the tokens issued are bound to it.
    pub dpop_jkt: Option<&'a str>,
}

impl GrantContext<'_> {
    /// The audit record to commit with the tokens of `grant_id`.
    pub fn success_audit(&self, grant_id: &str) -> AuditRecord {
        AuditRecord { grant_id: Some(grant_id.to_string()), ..self.audit.clone() }
    }
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a DPoP-bound access token (RFC 9449 §5).
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
    /// The grant the tokens belong to: recorded in the audit log, never sent.
    #[serde(skip)]
    pub grant_id: String,
}

/// Runs the grant for an authenticated client. `resource` is the one resource the token request
/// names (`resource::requested_one`).
pub async fn handle(
    ctx: &GrantContext<'_>,
    client: &Client,
    request: GrantRequest,
    resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    let grant = request.grant_type();
    if !client.may_use(grant) {
        return Err(Rejection::new(Reason::GrantTypeNotAllowedForClient)
            .with("client_id", client.id.clone())
            .with("grant_type", grant.as_str())
            .with("allowed", client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")));
    }
    match request {
        GrantRequest::AuthorizationCode { code, redirect_uri, code_verifier } => {
            let presented = authorization_code::Presented {
                code: &code,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_deref(),
                resource,
            };
            authorization_code::exchange(ctx, client, &presented).await
        }
        GrantRequest::RefreshToken { refresh_token, scope } => {
            refresh_token::rotate(ctx, client, &refresh_token, scope.as_deref(), resource).await
        }
        GrantRequest::ClientCredentials { scope } => {
            client_credentials::issue(ctx, client, scope.as_deref(), resource).await
        }
        GrantRequest::DeviceCode { device_code } => device_code::exchange(ctx, client, &device_code, resource).await,
    }
}

/// A grant a user made (with a code, or at the device verification page), ready to be exchanged.
pub(crate) struct UserGrant<'a> {
    pub grant_id: &'a str,
    pub user_id: &'a str,
    pub auth_time: UnixTime,
    /// The granted scope, as stored.
    pub scope: &'a str,
    pub resources: &'a [String],
    pub nonce: Option<&'a str>,
    /// The browser session the grant was made in (its public `sid`), if any.
    pub sid: Option<&'a str>,
}

/// The user behind a grant must still exist, be enabled and consent to its scope.
pub(crate) async fn require_user(
    ctx: &GrantContext<'_>,
    client: &Client,
    grant: &UserGrant<'_>,
) -> Result<(), Rejection> {
    match ctx.store.user(grant.user_id).await.map_err(Rejection::store)? {
        None => return Err(Rejection::new(Reason::UserUnknown)),
        Some(u) if u.disabled => return Err(Rejection::new(Reason::UserDisabled).with_internal("username", u.username)),
        Some(_) => {}
    }
    require_consent(ctx, grant.user_id, &client.id, grant.grant_id, grant.scope).await
}

/// The tokens a user's grant is first exchanged for: an access token (for `resource`, if any),
/// a refresh token if the client may refresh and asked for `offline_access` (or always gets
/// one), and an ID token if `openid` was granted. Returns what to store and, once it is stored,
/// the response.
pub(crate) fn user_tokens(
    ctx: &GrantContext<'_>,
    client: &Client,
    grant: &UserGrant<'_>,
    resource: Option<&Resource>,
) -> Result<(IssuedTokens, TokenResponse), Rejection> {
    let granted = Scope::from_stored(grant.scope);
    let access = new_access_token(
        ctx,
        &access_token::Spec {
            grant_id: grant.grant_id,
            client,
            user_id: Some(grant.user_id),
            auth_time: Some(grant.auth_time),
            scope: &granted,
            resource,
            dpop_jkt: ctx.dpop_jkt,
        },
    )?;
    let wants_refresh = client.may_use(GrantType::RefreshToken)
        && (granted.contains(scope::OFFLINE_ACCESS) || client.always_issue_refresh_token);
    let refresh = if wants_refresh {
        let secret = Secret::generate(SecretKind::RefreshToken).map_err(|_| Rejection::internal())?;
        let rec = RefreshTokenRecord {
            hash: secret.hash.clone(),
            grant_id: grant.grant_id.to_string(),
            client_id: client.id.clone(),
            user_id: grant.user_id.to_string(),
            scope: grant.scope.to_string(),
            resources: grant.resources.to_vec(),
            // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key (a
            // confidential client's are bound to its credentials already).
            dpop_jkt: if client.is_public() { ctx.dpop_jkt.map(str::to_string) } else { None },
            sid: grant.sid.map(str::to_string),
            auth_time: grant.auth_time,
            issued_at: ctx.now,
            expires_at: ctx.now + ctx.settings.refresh_token_lifetime,
            rotated_at: None,
            rotated_trace: None,
            revoked_at: None,
            issued_trace: ctx.trace.to_string(),
        };
        Some((secret, rec))
    } else {
        None
    };
    let id_token = if granted.contains(scope::OPENID) {
        Some(id_token::sign(
            ctx.keys,
            ctx.settings,
            &IdTokenInput {
                client,
                user_id: grant.user_id,
                auth_time: grant.auth_time,
                nonce: grant.nonce,
                sid: grant.sid,
                access_token: &access.value,
            },
            ctx.now,
        )?)
    } else {
        None
    };
    let issued = IssuedTokens {
        audit: Some(ctx.success_audit(grant.grant_id)),
        access: access.record,
        refresh: refresh.as_ref().map(|(_, r)| r.clone()),
    };
    let response = TokenResponse {
        token_type: access.token_type,
        access_token: access.value,
        expires_in: access.expires_in,
        refresh_token: refresh.map(|(s, _)| s.value),
        id_token,
        scope: access.scope.to_string(),
        grant_id: grant.grant_id.to_string(),
    };
    Ok((issued, response))
}

/// A new access token for a grant, as `spec` says (format, audience, lifetime, DPoP key).
pub(crate) fn new_access_token(ctx: &GrantContext<'_>, spec: &access_token::Spec<'_>) -> Result<Minted, Rejection> {
    access_token::mint(ctx.keys, ctx.settings, ctx.now, spec)
}

/// The registered resource the token is for, if any: `named` by the token request, or the grant's
/// only one (RFC 8707 §2.2).
pub(crate) async fn token_resource(
    ctx: &GrantContext<'_>,
    client: &Client,
    named: Option<&str>,
    granted: &[String],
) -> Result<Option<Resource>, Rejection> {
    match resource::choose(named, granted)? {
        None => Ok(None),
        Some(id) => Ok(Some(resource::load(ctx.store, client, &id).await?)),
    }
}

/// A replay (a code or device code used twice, a rotated refresh token presented again): one of
/// the two holders is not the client, so every token of the grant is revoked (RFC 6749 §4.1.2,
/// RFC 9700 §4.14.2), and the refusal says whether that worked, as `flag`.
pub(crate) async fn revoke_after_replay(
    ctx: &GrantContext<'_>,
    grant_id: &str,
    r: Rejection,
    flag: &'static str,
) -> Rejection {
    match ctx.store.revoke_grant(grant_id, ctx.now).await {
        Ok(n) => r.with("tokens_revoked_now", n).with(flag, true),
        Err(e) => r.with(flag, false).with_internal("revoke_error", e.to_string()),
    }
}

/// The grant holds only while the user's consent covers its scope; if it no longer does, the
/// grant's tokens are revoked and the refusal says so.
pub(crate) async fn require_consent(
    ctx: &GrantContext<'_>,
    user_id: &str,
    client_id: &str,
    grant_id: &str,
    scope: &str,
) -> Result<(), Rejection> {
    let consented = ctx.store.consent(user_id, client_id).await.map_err(Rejection::store)?;
    let granted = crate::scope::Scope::from_stored(scope);
    let missing: Vec<&str> = granted.iter().filter(|s| !consented.iter().any(|c| c == s)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let revoked = ctx.store.revoke_grant(grant_id, ctx.now).await.map_err(Rejection::store)?;
    Err(Rejection::new(Reason::ConsentRevoked)
        .with("scopes_without_consent", missing.join(" "))
        .with("tokens_revoked_now", revoked))
}
