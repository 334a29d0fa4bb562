//! The documentation page of every reason (`docs/reasons/<reason>.md`), embedded at build time so
//! a reason without a page does not compile, and the parts `explain` and the server show.

use crate::rejection::Reason;

/// The Markdown page of a reason.
pub fn page(reason: Reason) -> &'static str {
    match reason {
        Reason::ParameterMissing => include_str!("../../../docs/reasons/parameter_missing.md"),
        Reason::ParameterDuplicated => include_str!("../../../docs/reasons/parameter_duplicated.md"),
        Reason::ParameterInvalid => include_str!("../../../docs/reasons/parameter_invalid.md"),
        Reason::ContentTypeUnsupported => include_str!("../../../docs/reasons/content_type_unsupported.md"),
        Reason::BodyMalformed => include_str!("../../../docs/reasons/body_malformed.md"),
        Reason::BodyTooLarge => include_str!("../../../docs/reasons/body_too_large.md"),
        Reason::HeadersTooLarge => include_str!("../../../docs/reasons/headers_too_large.md"),
        Reason::ClientUnknown => include_str!("../../../docs/reasons/client_unknown.md"),
        Reason::RedirectUriNotRegistered => include_str!("../../../docs/reasons/redirect_uri_not_registered.md"),
        Reason::RedirectUriRequired => include_str!("../../../docs/reasons/redirect_uri_required.md"),
        Reason::ResponseTypeUnsupported => include_str!("../../../docs/reasons/response_type_unsupported.md"),
        Reason::ScopeNotAllowed => include_str!("../../../docs/reasons/scope_not_allowed.md"),
        Reason::PkceChallengeRequired => include_str!("../../../docs/reasons/pkce_challenge_required.md"),
        Reason::PkceMethodNotAllowed => include_str!("../../../docs/reasons/pkce_method_not_allowed.md"),
        Reason::PkceChallengeMalformed => include_str!("../../../docs/reasons/pkce_challenge_malformed.md"),
        Reason::LoginRequired => include_str!("../../../docs/reasons/login_required.md"),
        Reason::ConsentRequired => include_str!("../../../docs/reasons/consent_required.md"),
        Reason::ConsentDenied => include_str!("../../../docs/reasons/consent_denied.md"),
        Reason::InteractionExpired => include_str!("../../../docs/reasons/interaction_expired.md"),
        Reason::IdTokenHintInvalid => include_str!("../../../docs/reasons/id_token_hint_invalid.md"),
        Reason::IdTokenHintClientMismatch => include_str!("../../../docs/reasons/id_token_hint_client_mismatch.md"),
        Reason::PostLogoutRedirectUriNotRegistered => {
            include_str!("../../../docs/reasons/post_logout_redirect_uri_not_registered.md")
        }
        Reason::PostLogoutRedirectUriWithoutClient => {
            include_str!("../../../docs/reasons/post_logout_redirect_uri_without_client.md")
        }
        Reason::RegistrationDisabled => include_str!("../../../docs/reasons/registration_disabled.md"),
        Reason::RegistrationTokenInvalid => include_str!("../../../docs/reasons/registration_token_invalid.md"),
        Reason::RegistrationAccessTokenInvalid => {
            include_str!("../../../docs/reasons/registration_access_token_invalid.md")
        }
        Reason::ClientMetadataInvalid => include_str!("../../../docs/reasons/client_metadata_invalid.md"),
        Reason::RedirectUriInvalid => include_str!("../../../docs/reasons/redirect_uri_invalid.md"),
        Reason::SoftwareStatementUnsupported => include_str!("../../../docs/reasons/software_statement_unsupported.md"),
        Reason::GrantTypeUnsupported => include_str!("../../../docs/reasons/grant_type_unsupported.md"),
        Reason::GrantTypeNotAllowedForClient => {
            include_str!("../../../docs/reasons/grant_type_not_allowed_for_client.md")
        }
        Reason::ClientAuthenticationMissing => include_str!("../../../docs/reasons/client_authentication_missing.md"),
        Reason::ClientAuthenticationFailedUnknownClient => {
            include_str!("../../../docs/reasons/client_unknown_at_token.md")
        }
        Reason::ClientSecretWrong => include_str!("../../../docs/reasons/client_secret_wrong.md"),
        Reason::AuthMethodNotAllowed => include_str!("../../../docs/reasons/auth_method_not_allowed.md"),
        Reason::MultipleAuthMethods => include_str!("../../../docs/reasons/multiple_auth_methods.md"),
        Reason::BasicAuthMalformed => include_str!("../../../docs/reasons/basic_auth_malformed.md"),
        Reason::ClientIdConflict => include_str!("../../../docs/reasons/client_id_conflict.md"),
        Reason::CodeMalformed => include_str!("../../../docs/reasons/code_malformed.md"),
        Reason::CodeUnknown => include_str!("../../../docs/reasons/code_unknown.md"),
        Reason::CodeExpired => include_str!("../../../docs/reasons/code_expired.md"),
        Reason::CodeSessionEnded => include_str!("../../../docs/reasons/code_session_ended.md"),
        Reason::CodeAlreadyRedeemed => include_str!("../../../docs/reasons/code_already_redeemed.md"),
        Reason::CodeIssuedToOtherClient => include_str!("../../../docs/reasons/code_issued_to_other_client.md"),
        Reason::RedirectUriMissingAtToken => include_str!("../../../docs/reasons/redirect_uri_missing_at_token.md"),
        Reason::RedirectUriMismatch => include_str!("../../../docs/reasons/redirect_uri_mismatch.md"),
        Reason::PkceVerifierMissing => include_str!("../../../docs/reasons/pkce_verifier_missing.md"),
        Reason::PkceVerifierMalformed => include_str!("../../../docs/reasons/pkce_verifier_malformed.md"),
        Reason::PkceVerifierMismatch => include_str!("../../../docs/reasons/pkce_verifier_mismatch.md"),
        Reason::PkceVerifierUnexpected => include_str!("../../../docs/reasons/pkce_verifier_unexpected.md"),
        Reason::RefreshTokenMalformed => include_str!("../../../docs/reasons/refresh_token_malformed.md"),
        Reason::RefreshTokenUnknown => include_str!("../../../docs/reasons/refresh_token_unknown.md"),
        Reason::RefreshTokenExpired => include_str!("../../../docs/reasons/refresh_token_expired.md"),
        Reason::RefreshTokenRevoked => include_str!("../../../docs/reasons/refresh_token_revoked.md"),
        Reason::RefreshTokenReused => include_str!("../../../docs/reasons/refresh_token_reused.md"),
        Reason::RefreshTokenIssuedToOtherClient => {
            include_str!("../../../docs/reasons/refresh_token_issued_to_other_client.md")
        }
        Reason::RefreshTokenRotated => include_str!("../../../docs/reasons/refresh_token_rotated.md"),
        Reason::ScopeBroadened => include_str!("../../../docs/reasons/scope_broadened.md"),
        Reason::UserDisabled => include_str!("../../../docs/reasons/user_disabled.md"),
        Reason::UserUnknown => include_str!("../../../docs/reasons/user_unknown.md"),
        Reason::ConsentRevoked => include_str!("../../../docs/reasons/consent_revoked.md"),
        Reason::AccessTokenMissing => include_str!("../../../docs/reasons/access_token_missing.md"),
        Reason::AccessTokenMalformed => include_str!("../../../docs/reasons/access_token_malformed.md"),
        Reason::AccessTokenUnknown => include_str!("../../../docs/reasons/access_token_unknown.md"),
        Reason::AccessTokenExpired => include_str!("../../../docs/reasons/access_token_expired.md"),
        Reason::AccessTokenRevoked => include_str!("../../../docs/reasons/access_token_revoked.md"),
        Reason::InsufficientScope => include_str!("../../../docs/reasons/insufficient_scope.md"),
        Reason::TokenTypeUnsupported => include_str!("../../../docs/reasons/token_type_unsupported.md"),
        Reason::TokenIssuedToOtherClient => include_str!("../../../docs/reasons/token_issued_to_other_client.md"),
        Reason::IntrospectionClientNotConfidential => {
            include_str!("../../../docs/reasons/introspection_client_not_confidential.md")
        }
        Reason::ClientAssertionTypeUnsupported => {
            include_str!("../../../docs/reasons/client_assertion_type_unsupported.md")
        }
        Reason::ClientAssertionMalformed => include_str!("../../../docs/reasons/client_assertion_malformed.md"),
        Reason::ClientAssertionSignatureInvalid => {
            include_str!("../../../docs/reasons/client_assertion_signature_invalid.md")
        }
        Reason::ClientAssertionIssuerMismatch => {
            include_str!("../../../docs/reasons/client_assertion_issuer_mismatch.md")
        }
        Reason::ClientAssertionAudienceWrong => {
            include_str!("../../../docs/reasons/client_assertion_audience_wrong.md")
        }
        Reason::ClientAssertionExpired => include_str!("../../../docs/reasons/client_assertion_expired.md"),
        Reason::ClientAssertionLifetimeTooLong => {
            include_str!("../../../docs/reasons/client_assertion_lifetime_too_long.md")
        }
        Reason::ClientSecretUnreadable => include_str!("../../../docs/reasons/client_secret_unreadable.md"),
        Reason::ClientAssertionNotYetValid => include_str!("../../../docs/reasons/client_assertion_not_yet_valid.md"),
        Reason::ClientAssertionReplayed => include_str!("../../../docs/reasons/client_assertion_replayed.md"),
        Reason::RequestUriUnknown => include_str!("../../../docs/reasons/request_uri_unknown.md"),
        Reason::RequestUriUsed => include_str!("../../../docs/reasons/request_uri_used.md"),
        Reason::RequestUriExpired => include_str!("../../../docs/reasons/request_uri_expired.md"),
        Reason::RequestUriClientMismatch => include_str!("../../../docs/reasons/request_uri_client_mismatch.md"),
        Reason::ParRequired => include_str!("../../../docs/reasons/par_required.md"),
        Reason::DeviceCodeUnknown => include_str!("../../../docs/reasons/device_code_unknown.md"),
        Reason::DeviceCodeIssuedToOtherClient => {
            include_str!("../../../docs/reasons/device_code_issued_to_other_client.md")
        }
        Reason::DeviceCodeExpired => include_str!("../../../docs/reasons/device_code_expired.md"),
        Reason::DeviceCodeAlreadyUsed => include_str!("../../../docs/reasons/device_code_already_used.md"),
        Reason::DeviceAuthorizationPending => include_str!("../../../docs/reasons/device_authorization_pending.md"),
        Reason::DevicePollingTooFast => include_str!("../../../docs/reasons/device_polling_too_fast.md"),
        Reason::DeviceAccessDenied => include_str!("../../../docs/reasons/device_access_denied.md"),
        Reason::UserCodeUnknown => include_str!("../../../docs/reasons/user_code_unknown.md"),
        Reason::UserCodeExpired => include_str!("../../../docs/reasons/user_code_expired.md"),
        Reason::UserCodeUsed => include_str!("../../../docs/reasons/user_code_used.md"),
        Reason::ResourceInvalid => include_str!("../../../docs/reasons/resource_invalid.md"),
        Reason::ResourceUnknown => include_str!("../../../docs/reasons/resource_unknown.md"),
        Reason::ResourceNotAllowed => include_str!("../../../docs/reasons/resource_not_allowed.md"),
        Reason::ResourceNotGranted => include_str!("../../../docs/reasons/resource_not_granted.md"),
        Reason::ResourceAmbiguous => include_str!("../../../docs/reasons/resource_ambiguous.md"),
        Reason::ResourceOnePerToken => include_str!("../../../docs/reasons/resource_one_per_token.md"),
        Reason::AccessTokenAudienceMismatch => include_str!("../../../docs/reasons/access_token_audience_mismatch.md"),
        Reason::IdTokenAsAccessToken => include_str!("../../../docs/reasons/id_token_as_access_token.md"),
        Reason::DpopProofInvalid => include_str!("../../../docs/reasons/dpop_proof_invalid.md"),
        Reason::DpopProofWrongTarget => include_str!("../../../docs/reasons/dpop_proof_wrong_target.md"),
        Reason::DpopProofStale => include_str!("../../../docs/reasons/dpop_proof_stale.md"),
        Reason::DpopProofReplayed => include_str!("../../../docs/reasons/dpop_proof_replayed.md"),
        Reason::DpopNonceRequired => include_str!("../../../docs/reasons/dpop_nonce_required.md"),
        Reason::DpopKeyMismatch => include_str!("../../../docs/reasons/dpop_key_mismatch.md"),
        Reason::DpopProofMissing => include_str!("../../../docs/reasons/dpop_proof_missing.md"),
        Reason::AccessTokenDpopBound => include_str!("../../../docs/reasons/access_token_dpop_bound.md"),
        Reason::InternalError => include_str!("../../../docs/reasons/internal_error.md"),
        Reason::StoreUnavailable => include_str!("../../../docs/reasons/store_unavailable.md"),
        Reason::RateLimited => include_str!("../../../docs/reasons/rate_limited.md"),
    }
}

/// The first paragraph under the title: what happened, in plain words.
pub fn summary(reason: Reason) -> String {
    page(reason)
        .lines()
        .skip_while(|l| l.starts_with('#') || l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bullets of a section (`## How to fix`, `## Common causes`), one string each.
pub fn bullets(reason: Reason, heading: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut inside = false;
    for line in page(reason).lines() {
        if let Some(h) = line.strip_prefix("## ") {
            inside = h.trim().eq_ignore_ascii_case(heading);
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(item) = line.trim_start().strip_prefix("- ") {
            out.push(item.trim().to_string());
        } else if !line.trim().is_empty()
            && line.starts_with(' ')
            && let Some(last) = out.last_mut()
        {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    out
}

/// How to fix it: the bullets of `## How to fix`.
pub fn fix(reason: Reason) -> Vec<String> {
    bullets(reason, "How to fix")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_page_with_a_summary_causes_and_a_fix() {
        for r in Reason::ALL {
            let p = page(*r);
            assert!(p.starts_with(&format!("# {}\n", r.code())), "{}: title", r.code());
            assert!(!summary(*r).is_empty(), "{}: summary", r.code());
            assert!(!fix(*r).is_empty(), "{}: how to fix", r.code());
            assert!(!bullets(*r, "Common causes").is_empty(), "{}: common causes", r.code());
            assert!(p.contains(&format!("`{}`", r.error())), "{}: names its RFC error", r.code());
        }
    }
}
