//! The client credentials grant (RFC 6749 §4.4): an access token for the client itself.

use super::{GrantContext, TokenResponse, new_access_token};
use crate::model::{Client, IssuedTokens};
use crate::rejection::{Reason, Rejection};
use crate::scope::{self, Scope};
use crate::tokens::ordered_id;
use crate::{access_token, resource};

pub async fn issue(
    ctx: &GrantContext<'_>,
    client: &Client,
    requested: Option<&str>,
    named_resource: Option<&str>,
) -> Result<TokenResponse, Rejection> {
    // RFC 6749 §4.4: only confidential clients; a public client cannot keep a credential.
    if client.is_public() {
        return Err(Rejection::new(Reason::GrantTypeNotAllowedForClient)
            .with("grant_type", "client_credentials")
            .with("problem", "public clients cannot use client_credentials"));
    }
    // User scopes make no sense without a user: no ID token, no refresh token (RFC 6749 §4.4.3).
    let allowed = Scope::from_stored(&client.scopes.join(" "))
        .without(scope::OPENID)
        .without(scope::OFFLINE_ACCESS)
        .without(scope::PROFILE)
        .without(scope::EMAIL);
    let scope = match requested {
        Some(s) => {
            let requested = Scope::parse(s)?;
            requested.require_allowed(&allowed).map_err(|r| {
                if requested.contains(scope::OPENID) || requested.contains(scope::OFFLINE_ACCESS) {
                    r.with(
                        "problem",
                        "user scopes (openid, offline_access, profile, email) are not available without a user",
                    )
                } else {
                    r
                }
            })?;
            requested
        }
        None => allowed,
    };
    // No user grant stands between the client and the resource: any resource the client is
    // registered for (RFC 8707 §2); none named, none.
    let resource = match named_resource {
        None => None,
        Some(id) => Some(resource::load(ctx.store, client, id).await?),
    };
    let grant_id = ordered_id().map_err(|_| Rejection::internal())?;
    let access = new_access_token(
        ctx,
        &access_token::Spec {
            grant_id: &grant_id,
            client,
            user_id: None,
            auth_time: None,
            scope: &scope,
            resource: resource.as_ref(),
            dpop_jkt: ctx.dpop_jkt,
        },
    )?;
    ctx.store
        .insert_tokens(&IssuedTokens {
            access: access.record,
            refresh: None,
            audit: Some(ctx.success_audit(&grant_id)),
        })
        .await
        .map_err(Rejection::store)?;
    Ok(TokenResponse {
        token_type: access.token_type,
        access_token: access.value,
        expires_in: access.expires_in,
        refresh_token: None,
        id_token: None,
        scope: access.scope.to_string(),
        grant_id,
    })
}
