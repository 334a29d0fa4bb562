//! The `Rejection` type and the closed catalogue of reasons every refusal in Candor carries.
//!
//! One type crosses every boundary unchanged: the server derives status, `error`,
//! `error_description` and the trace record from it, and tests assert on the `Reason`.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Why a request was refused. Each variant knows its stable code, its RFC error and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    // --- request shape (RFC 6749 §3.1, §3.2, §4.1.3, §5.2) ---
    /// A required parameter is absent.
    ParameterMissing,
    /// RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    ParameterDuplicated,
    /// A parameter is present but its value cannot be used (bad encoding, out of range, empty).
    ParameterInvalid,
    /// RFC 6749 §4.1.3: the token request body is `application/x-www-form-urlencoded` (JSON is
    /// also accepted by Candor); anything else is refused.
    ContentTypeUnsupported,
    /// The body could not be decoded (not UTF-8, broken JSON, JSON that is not an object of strings).
    BodyMalformed,
    /// The body is larger than Candor reads (`BODY_LIMIT`); answered with HTTP 413.
    BodyTooLarge,
    /// The request's header fields together are larger than Candor reads; answered with HTTP 431.
    HeadersTooLarge,

    // --- authorization request (RFC 6749 §4.1.1, §4.1.2.1; OIDC Core §3.1.2) ---
    /// The `client_id` names no registered client; answered with a page, never a redirect.
    ClientUnknown,
    /// The `redirect_uri` is not one of the client's registered URIs; answered with a page.
    RedirectUriNotRegistered,
    /// The client registered several redirect URIs, so the request must say which one.
    RedirectUriRequired,
    /// Only `response_type=code` is supported.
    ResponseTypeUnsupported,
    /// A requested scope is unknown or not allowed for this client.
    ScopeNotAllowed,
    /// RFC 7636 §4.4.1 / RFC 9700 §2.1.1: this client must send a `code_challenge`.
    PkceChallengeRequired,
    /// RFC 7636 §4.3: the `code_challenge_method` is unknown, or `plain` is not enabled for the client.
    PkceMethodNotAllowed,
    /// RFC 7636 §4.2: a challenge is 43-128 characters of `[A-Za-z0-9-._~]`.
    PkceChallengeMalformed,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user is not logged in (or `max_age` has passed).
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user has not consented to these scopes.
    ConsentRequired,
    /// The user refused consent.
    ConsentDenied,
    /// The authorization interaction expired or was already completed.
    InteractionExpired,
    // --- pushed authorization requests (RFC 9126) ---
    /// RFC 9126 §4: the `request_uri` was not issued by /par (or has been swept).
    RequestUriUnknown,
    /// RFC 9126 §4: a `request_uri` is for one authorization request.
    RequestUriUsed,
    /// RFC 9126 §2.2: the `request_uri` lived past its `expires_in`.
    RequestUriExpired,
    /// RFC 9126 §4: the `client_id` at /authorize is not the client that pushed the request.
    RequestUriClientMismatch,
    /// RFC 9126 §5: this client's authorization requests must be pushed to /par first.
    ParRequired,
    // --- logout (OIDC RP-Initiated Logout 1.0) ---
    /// The `id_token_hint` is not an ID token this provider signed (malformed, another
    /// provider's, an access token); expiry does not matter.
    IdTokenHintInvalid,
    /// §2: the `client_id` sent beside an `id_token_hint` must be the client it was issued to.
    IdTokenHintClientMismatch,
    /// §3.1: the `post_logout_redirect_uri` is not one the client registered.
    PostLogoutRedirectUriNotRegistered,
    /// §2: a `post_logout_redirect_uri` needs an `id_token_hint` or `client_id` naming the client.
    PostLogoutRedirectUriWithoutClient,

    // --- dynamic client registration (RFC 7591, RFC 7592) ---
    /// The registration endpoint is off (`[registration] enabled`).
    RegistrationDisabled,
    /// RFC 7591 §3: registration is protected by an initial access token, missing or wrong here.
    RegistrationTokenInvalid,
    /// RFC 7592 §2: the registration access token does not manage this client (or the client is gone).
    RegistrationAccessTokenInvalid,
    /// RFC 7591 §3.2.2 `invalid_client_metadata`: a field's value is wrong, unsupported or inconsistent.
    ClientMetadataInvalid,
    /// RFC 7591 §3.2.2 `invalid_redirect_uri`: a redirect URI offered for registration is not absolute, has a fragment, or is missing.
    RedirectUriInvalid,
    /// RFC 7591 §2.3: Candor trusts no software statement issuer, so it takes none.
    SoftwareStatementUnsupported,

    // --- token endpoint: grant and client (RFC 6749 §5.2) ---
    /// The `grant_type` is not one Candor implements.
    GrantTypeUnsupported,
    /// The client is not registered for this grant type (`unauthorized_client`).
    GrantTypeNotAllowedForClient,
    /// No client authentication and no `client_id` were sent.
    ClientAuthenticationMissing,
    /// The authenticated `client_id` is not registered.
    ClientAuthenticationFailedUnknownClient,
    /// The client secret does not match.
    ClientSecretWrong,
    /// The client used an authentication method it is not registered for.
    AuthMethodNotAllowed,
    /// RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each request."
    MultipleAuthMethods,
    /// The `Authorization: Basic` header cannot be decoded.
    BasicAuthMalformed,
    /// The `client_id` in the body differs from the one in the `Authorization` header.
    ClientIdConflict,
    // --- private_key_jwt (RFC 7523, OIDC Core §9) ---
    /// RFC 7523 §2.2: `client_assertion_type` must be `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    ClientAssertionTypeUnsupported,
    /// The client assertion is not a JWT with the claims RFC 7523 §3 and OIDC Core §9 require.
    ClientAssertionMalformed,
    /// The assertion's signature does not verify with a key registered for the client.
    ClientAssertionSignatureInvalid,
    /// RFC 7523 §3: `iss` and `sub` must both be the client_id (and match a client_id sent beside it).
    ClientAssertionIssuerMismatch,
    /// RFC 7523 §3: `aud` must identify Candor: its issuer or the URL of the endpoint.
    ClientAssertionAudienceWrong,
    /// The assertion's `exp` has passed, beyond the configured clock leeway.
    ClientAssertionExpired,
    /// The assertion's `exp` is further ahead than Candor remembers a `jti` for.
    ClientAssertionLifetimeTooLong,
    /// A `client_secret_jwt` client's sealed secret does not open here (no or another sealing key).
    ClientSecretUnreadable,
    /// The assertion's `iat` or `nbf` lies in the future, beyond the configured clock leeway.
    ClientAssertionNotYetValid,
    /// The assertion's `jti` was already used: each assertion authenticates one request.
    ClientAssertionReplayed,

    // --- authorization code (RFC 6749 §4.1.2, §4.1.3; RFC 7636 §4.6) ---
    /// The code has the shape of a Candor code but its checksum fails, or it carries extra characters.
    CodeMalformed,
    /// The code was never issued here (or its tombstone has been swept).
    CodeUnknown,
    /// RFC 6749 §4.1.2: the code lived past its lifetime.
    CodeExpired,
    /// The browser session the code was issued in was logged out of before the code was redeemed.
    CodeSessionEnded,
    /// RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once."
    CodeAlreadyRedeemed,
    /// RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated confidential client".
    CodeIssuedToOtherClient,
    /// RFC 6749 §4.1.3: `redirect_uri` is "REQUIRED, if the redirect_uri parameter was included in the authorization request".
    RedirectUriMissingAtToken,
    /// RFC 6749 §4.1.3: "their values MUST be identical".
    RedirectUriMismatch,
    /// RFC 7636 §4.5: the code was requested with a challenge; the verifier is required.
    PkceVerifierMissing,
    /// RFC 7636 §4.1: a verifier is 43-128 characters of `[A-Za-z0-9-._~]`.
    PkceVerifierMalformed,
    /// RFC 7636 §4.6: the verifier does not transform into the challenge.
    PkceVerifierMismatch,
    /// RFC 9700 §2.1.1: a verifier sent for a code that was requested without a challenge.
    PkceVerifierUnexpected,

    // --- refresh tokens (RFC 6749 §6, RFC 9700 §4.14) ---
    RefreshTokenMalformed,
    RefreshTokenUnknown,
    RefreshTokenExpired,
    RefreshTokenRevoked,
    /// RFC 9700 §4.14.2: a rotated refresh token was presented again; the family is revoked.
    RefreshTokenReused,
    RefreshTokenIssuedToOtherClient,
    /// The refresh token was exchanged for a newer one (rotation); only the newest is active.
    /// Reported by introspection (at /token, presenting it again is `RefreshTokenReused`).
    RefreshTokenRotated,
    /// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted".
    ScopeBroadened,

    // --- device authorization grant (RFC 8628) ---
    /// The device code was never issued here, was altered, or its tombstone has been swept.
    DeviceCodeUnknown,
    /// RFC 8628 §3.4: the device code belongs to the client that requested it.
    DeviceCodeIssuedToOtherClient,
    /// RFC 8628 §3.5 `expired_token`: the device code lived past its `expires_in`.
    DeviceCodeExpired,
    /// The approved device code was already exchanged for tokens; the grant's tokens are revoked.
    DeviceCodeAlreadyUsed,
    /// RFC 8628 §3.5 `authorization_pending`: the user has not decided yet; poll again.
    DeviceAuthorizationPending,
    /// RFC 8628 §3.5 `slow_down`: polled before the interval passed; the interval grows by 5 s.
    DevicePollingTooFast,
    /// RFC 8628 §3.5 `access_denied`: the user denied the device's request.
    DeviceAccessDenied,
    /// The code entered at the verification page matches no device authorization.
    UserCodeUnknown,
    /// The code entered at the verification page belongs to an expired device authorization.
    UserCodeExpired,
    /// The code entered at the verification page was already approved or denied.
    UserCodeUsed,

    // --- resource indicators (RFC 8707) ---
    /// RFC 8707 §2: a resource indicator is an absolute URI without a fragment.
    ResourceInvalid,
    /// No resource with this indicator is registered.
    ResourceUnknown,
    /// The client is not registered for this resource.
    ResourceNotAllowed,
    /// RFC 8707 §2.2: a token request may name only a resource the grant was authorized for.
    ResourceNotGranted,
    /// The grant covers several resources and the token request named none of them.
    ResourceAmbiguous,
    /// A token request named several resources; Candor issues one access token per resource.
    ResourceOnePerToken,

    // --- DPoP (RFC 9449) ---
    /// RFC 9449 §4.3: the DPoP proof is not a valid proof (shape, typ, alg, jwk, signature, claims, ath).
    DpopProofInvalid,
    /// RFC 9449 §4.3: the proof's `htm` or `htu` is not this request's method or endpoint.
    DpopProofWrongTarget,
    /// RFC 9449 §4.3: the proof's `iat` is too far from the server's time.
    DpopProofStale,
    /// RFC 9449 §11.1: a proof's `jti` was already used.
    DpopProofReplayed,
    /// RFC 9449 §8: the proof must carry the nonce the server provides (`use_dpop_nonce`).
    DpopNonceRequired,
    /// The grant or token is bound to another DPoP key than the proof's (or to none).
    DpopKeyMismatch,
    /// A DPoP proof is required here (a bound grant, or a client registered for DPoP) and none was sent.
    DpopProofMissing,

    // --- the user behind a grant ---
    UserDisabled,
    UserUnknown,
    /// The user withdrew consent for this client after the grant was made.
    ConsentRevoked,

    // --- bearer tokens at resource endpoints (RFC 6750 §3.1) ---
    AccessTokenMissing,
    AccessTokenMalformed,
    AccessTokenUnknown,
    AccessTokenExpired,
    AccessTokenRevoked,
    /// RFC 8707: the access token was issued for another resource (its `aud`), not for userinfo.
    AccessTokenAudienceMismatch,
    /// RFC 9449 §7.1: a DPoP-bound access token was sent as a Bearer token, without a proof.
    AccessTokenDpopBound,
    /// An ID token was sent where an access token belongs (OIDC Core §2: an ID token is for the client).
    IdTokenAsAccessToken,
    /// The token was not granted the `openid` scope that userinfo needs.
    InsufficientScope,

    // --- introspection (RFC 7662) and revocation (RFC 7009) ---
    /// RFC 7009 §2.2.1: the `token_type_hint` names a kind of token Candor does not have.
    TokenTypeUnsupported,
    /// RFC 7009 §2.1: a client may revoke only the tokens issued to it.
    TokenIssuedToOtherClient,
    /// RFC 7662 §2.1: introspection needs an authenticated (confidential) client.
    IntrospectionClientNotConfidential,

    // --- Candor itself ---
    /// Something failed inside Candor; the detail is logged under the trace id, never sent.
    InternalError,
    /// The store could not be reached or written (a lost database connection, a full disk, a
    /// timeout); nothing was issued or changed. HTTP 503 with `Retry-After`.
    StoreUnavailable,
    /// The client sent more token requests than its configured rate allows. HTTP 429 with
    /// `Retry-After`.
    RateLimited,
}

/// The HTTP status and RFC error code a reason maps to, and where the response goes.
impl Reason {
    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: &'static [Reason] = &[
        Reason::ParameterMissing,
        Reason::ParameterDuplicated,
        Reason::ParameterInvalid,
        Reason::ContentTypeUnsupported,
        Reason::BodyMalformed,
        Reason::BodyTooLarge,
        Reason::HeadersTooLarge,
        Reason::ClientUnknown,
        Reason::RedirectUriNotRegistered,
        Reason::RedirectUriRequired,
        Reason::ResponseTypeUnsupported,
        Reason::ScopeNotAllowed,
        Reason::PkceChallengeRequired,
        Reason::PkceMethodNotAllowed,
        Reason::PkceChallengeMalformed,
        Reason::LoginRequired,
        Reason::ConsentRequired,
        Reason::ConsentDenied,
        Reason::InteractionExpired,
        Reason::RequestUriUnknown,
        Reason::RequestUriUsed,
        Reason::RequestUriExpired,
        Reason::RequestUriClientMismatch,
        Reason::ParRequired,
        Reason::IdTokenHintInvalid,
        Reason::IdTokenHintClientMismatch,
        Reason::PostLogoutRedirectUriNotRegistered,
        Reason::PostLogoutRedirectUriWithoutClient,
        Reason::RegistrationDisabled,
        Reason::RegistrationTokenInvalid,
        Reason::RegistrationAccessTokenInvalid,
        Reason::ClientMetadataInvalid,
        Reason::RedirectUriInvalid,
        Reason::SoftwareStatementUnsupported,
        Reason::GrantTypeUnsupported,
        Reason::GrantTypeNotAllowedForClient,
        Reason::ClientAuthenticationMissing,
        Reason::ClientAuthenticationFailedUnknownClient,
        Reason::ClientSecretWrong,
        Reason::AuthMethodNotAllowed,
        Reason::MultipleAuthMethods,
        Reason::BasicAuthMalformed,
        Reason::ClientIdConflict,
        Reason::ClientAssertionTypeUnsupported,
        Reason::ClientAssertionMalformed,
        Reason::ClientAssertionSignatureInvalid,
        Reason::ClientAssertionIssuerMismatch,
        Reason::ClientAssertionAudienceWrong,
        Reason::ClientAssertionExpired,
        Reason::ClientAssertionLifetimeTooLong,
        Reason::ClientSecretUnreadable,
        Reason::ClientAssertionNotYetValid,
        Reason::ClientAssertionReplayed,
        Reason::CodeMalformed,
        Reason::CodeUnknown,
        Reason::CodeExpired,
        Reason::CodeSessionEnded,
        Reason::CodeAlreadyRedeemed,
        Reason::CodeIssuedToOtherClient,
        Reason::RedirectUriMissingAtToken,
        Reason::RedirectUriMismatch,
        Reason::PkceVerifierMissing,
        Reason::PkceVerifierMalformed,
        Reason::PkceVerifierMismatch,
        Reason::PkceVerifierUnexpected,
        Reason::RefreshTokenMalformed,
        Reason::RefreshTokenUnknown,
        Reason::RefreshTokenExpired,
        Reason::RefreshTokenRevoked,
        Reason::RefreshTokenReused,
        Reason::RefreshTokenIssuedToOtherClient,
        Reason::RefreshTokenRotated,
        Reason::ScopeBroadened,
        Reason::DeviceCodeUnknown,
        Reason::DeviceCodeIssuedToOtherClient,
        Reason::DeviceCodeExpired,
        Reason::DeviceCodeAlreadyUsed,
        Reason::DeviceAuthorizationPending,
        Reason::DevicePollingTooFast,
        Reason::DeviceAccessDenied,
        Reason::UserCodeUnknown,
        Reason::UserCodeExpired,
        Reason::UserCodeUsed,
        Reason::ResourceInvalid,
        Reason::ResourceUnknown,
        Reason::ResourceNotAllowed,
        Reason::ResourceNotGranted,
        Reason::ResourceAmbiguous,
        Reason::ResourceOnePerToken,
        Reason::DpopProofInvalid,
        Reason::DpopProofWrongTarget,
        Reason::DpopProofStale,
        Reason::DpopProofReplayed,
        Reason::DpopNonceRequired,
        Reason::DpopKeyMismatch,
        Reason::DpopProofMissing,
        Reason::UserDisabled,
        Reason::UserUnknown,
        Reason::ConsentRevoked,
        Reason::AccessTokenMissing,
        Reason::AccessTokenMalformed,
        Reason::AccessTokenUnknown,
        Reason::AccessTokenExpired,
        Reason::AccessTokenRevoked,
        Reason::AccessTokenAudienceMismatch,
        Reason::AccessTokenDpopBound,
        Reason::IdTokenAsAccessToken,
        Reason::InsufficientScope,
        Reason::TokenTypeUnsupported,
        Reason::TokenIssuedToOtherClient,
        Reason::IntrospectionClientNotConfidential,
        Reason::InternalError,
        Reason::StoreUnavailable,
        Reason::RateLimited,
    ];

    /// The stable machine-readable code, e.g. `code_expired`.
    pub fn code(self) -> &'static str {
        use Reason::*;
        match self {
            ParameterMissing => "parameter_missing",
            ParameterDuplicated => "parameter_duplicated",
            ParameterInvalid => "parameter_invalid",
            ContentTypeUnsupported => "content_type_unsupported",
            BodyMalformed => "body_malformed",
            BodyTooLarge => "body_too_large",
            HeadersTooLarge => "headers_too_large",
            ClientUnknown => "client_unknown",
            RedirectUriNotRegistered => "redirect_uri_not_registered",
            RedirectUriRequired => "redirect_uri_required",
            ResponseTypeUnsupported => "response_type_unsupported",
            ScopeNotAllowed => "scope_not_allowed",
            PkceChallengeRequired => "pkce_challenge_required",
            PkceMethodNotAllowed => "pkce_method_not_allowed",
            PkceChallengeMalformed => "pkce_challenge_malformed",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            ConsentDenied => "consent_denied",
            InteractionExpired => "interaction_expired",
            RequestUriUnknown => "request_uri_unknown",
            RequestUriUsed => "request_uri_used",
            RequestUriExpired => "request_uri_expired",
            RequestUriClientMismatch => "request_uri_client_mismatch",
            ParRequired => "par_required",
            IdTokenHintInvalid => "id_token_hint_invalid",
            IdTokenHintClientMismatch => "id_token_hint_client_mismatch",
            PostLogoutRedirectUriNotRegistered => "post_logout_redirect_uri_not_registered",
            PostLogoutRedirectUriWithoutClient => "post_logout_redirect_uri_without_client",
            RegistrationDisabled => "registration_disabled",
            RegistrationTokenInvalid => "registration_token_invalid",
            RegistrationAccessTokenInvalid => "registration_access_token_invalid",
            ClientMetadataInvalid => "client_metadata_invalid",
            RedirectUriInvalid => "redirect_uri_invalid",
            SoftwareStatementUnsupported => "software_statement_unsupported",
            GrantTypeUnsupported => "grant_type_unsupported",
            GrantTypeNotAllowedForClient => "grant_type_not_allowed_for_client",
            ClientAuthenticationMissing => "client_authentication_missing",
            ClientAuthenticationFailedUnknownClient => "client_unknown_at_token",
            ClientSecretWrong => "client_secret_wrong",
            AuthMethodNotAllowed => "auth_method_not_allowed",
            MultipleAuthMethods => "multiple_auth_methods",
            BasicAuthMalformed => "basic_auth_malformed",
            ClientIdConflict => "client_id_conflict",
            ClientAssertionTypeUnsupported => "client_assertion_type_unsupported",
            ClientAssertionMalformed => "client_assertion_malformed",
            ClientAssertionSignatureInvalid => "client_assertion_signature_invalid",
            ClientAssertionIssuerMismatch => "client_assertion_issuer_mismatch",
            ClientAssertionAudienceWrong => "client_assertion_audience_wrong",
            ClientAssertionExpired => "client_assertion_expired",
            ClientAssertionLifetimeTooLong => "client_assertion_lifetime_too_long",
            ClientSecretUnreadable => "client_secret_unreadable",
            ClientAssertionNotYetValid => "client_assertion_not_yet_valid",
            ClientAssertionReplayed => "client_assertion_replayed",
            CodeMalformed => "code_malformed",
            CodeUnknown => "code_unknown",
            CodeExpired => "code_expired",
            CodeSessionEnded => "code_session_ended",
            CodeAlreadyRedeemed => "code_already_redeemed",
            CodeIssuedToOtherClient => "code_issued_to_other_client",
            RedirectUriMissingAtToken => "redirect_uri_missing_at_token",
            RedirectUriMismatch => "redirect_uri_mismatch",
            PkceVerifierMissing => "pkce_verifier_missing",
            PkceVerifierMalformed => "pkce_verifier_malformed",
            PkceVerifierMismatch => "pkce_verifier_mismatch",
            PkceVerifierUnexpected => "pkce_verifier_unexpected",
            RefreshTokenMalformed => "refresh_token_malformed",
            RefreshTokenUnknown => "refresh_token_unknown",
            RefreshTokenExpired => "refresh_token_expired",
            RefreshTokenRevoked => "refresh_token_revoked",
            RefreshTokenReused => "refresh_token_reused",
            RefreshTokenIssuedToOtherClient => "refresh_token_issued_to_other_client",
            RefreshTokenRotated => "refresh_token_rotated",
            TokenTypeUnsupported => "token_type_unsupported",
            TokenIssuedToOtherClient => "token_issued_to_other_client",
            IntrospectionClientNotConfidential => "introspection_client_not_confidential",
            ScopeBroadened => "scope_broadened",
            DeviceCodeUnknown => "device_code_unknown",
            DeviceCodeIssuedToOtherClient => "device_code_issued_to_other_client",
            DeviceCodeExpired => "device_code_expired",
            DeviceCodeAlreadyUsed => "device_code_already_used",
            DeviceAuthorizationPending => "device_authorization_pending",
            DevicePollingTooFast => "device_polling_too_fast",
            DeviceAccessDenied => "device_access_denied",
            UserCodeUnknown => "user_code_unknown",
            UserCodeExpired => "user_code_expired",
            UserCodeUsed => "user_code_used",
            ResourceInvalid => "resource_invalid",
            ResourceUnknown => "resource_unknown",
            ResourceNotAllowed => "resource_not_allowed",
            ResourceNotGranted => "resource_not_granted",
            ResourceAmbiguous => "resource_ambiguous",
            ResourceOnePerToken => "resource_one_per_token",
            DpopProofInvalid => "dpop_proof_invalid",
            DpopProofWrongTarget => "dpop_proof_wrong_target",
            DpopProofStale => "dpop_proof_stale",
            DpopProofReplayed => "dpop_proof_replayed",
            DpopNonceRequired => "dpop_nonce_required",
            DpopKeyMismatch => "dpop_key_mismatch",
            DpopProofMissing => "dpop_proof_missing",
            UserDisabled => "user_disabled",
            UserUnknown => "user_unknown",
            ConsentRevoked => "consent_revoked",
            AccessTokenMissing => "access_token_missing",
            AccessTokenMalformed => "access_token_malformed",
            AccessTokenUnknown => "access_token_unknown",
            AccessTokenExpired => "access_token_expired",
            AccessTokenRevoked => "access_token_revoked",
            AccessTokenAudienceMismatch => "access_token_audience_mismatch",
            AccessTokenDpopBound => "access_token_dpop_bound",
            IdTokenAsAccessToken => "id_token_as_access_token",
            InsufficientScope => "insufficient_scope",
            InternalError => "internal_error",
            StoreUnavailable => "store_unavailable",
            RateLimited => "rate_limited",
        }
    }

    /// The error code the RFCs define for this situation (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OIDC Core §3.1.2.6).
    pub fn error(self) -> &'static str {
        use Reason::*;
        match self {
            ParameterMissing
            | ParameterDuplicated
            | ParameterInvalid
            | ContentTypeUnsupported
            | BodyMalformed
            | BodyTooLarge
            | HeadersTooLarge
            | RedirectUriRequired
            | MultipleAuthMethods
            | ClientIdConflict
            | PkceChallengeRequired
            | PkceMethodNotAllowed
            | PkceChallengeMalformed
            | PkceVerifierMissing
            | PkceVerifierMalformed
            | InteractionExpired
            | ParRequired => "invalid_request",
            // RP-Initiated Logout 1.0 defines no error codes: shown on a page, never redirected.
            IdTokenHintInvalid
            | IdTokenHintClientMismatch
            | PostLogoutRedirectUriNotRegistered
            | PostLogoutRedirectUriWithoutClient => "invalid_request",
            RegistrationDisabled => "invalid_request",
            RegistrationTokenInvalid | RegistrationAccessTokenInvalid => "invalid_token",
            ClientMetadataInvalid => "invalid_client_metadata",
            RedirectUriInvalid => "invalid_redirect_uri",
            SoftwareStatementUnsupported => "invalid_software_statement",
            // RFC 9101 §6.2 (and RFC 9126 §4): the request_uri "returns an error or contains invalid data".
            RequestUriUnknown | RequestUriUsed | RequestUriExpired | RequestUriClientMismatch => "invalid_request_uri",
            ClientUnknown | RedirectUriNotRegistered => "invalid_request",
            ResponseTypeUnsupported => "unsupported_response_type",
            ScopeNotAllowed | ScopeBroadened => "invalid_scope",
            // RFC 8628 §3.5.
            DeviceCodeExpired => "expired_token",
            DeviceAuthorizationPending => "authorization_pending",
            DevicePollingTooFast => "slow_down",
            DeviceAccessDenied => "access_denied",
            DeviceCodeUnknown | DeviceCodeIssuedToOtherClient | DeviceCodeAlreadyUsed => "invalid_grant",
            // Answered on the verification page, never to a client.
            UserCodeUnknown | UserCodeExpired | UserCodeUsed => "invalid_request",
            // RFC 8707 §2: "invalid_target".
            ResourceInvalid | ResourceUnknown | ResourceNotAllowed | ResourceNotGranted | ResourceAmbiguous
            | ResourceOnePerToken => "invalid_target",
            // RFC 9449 §5, §7.1.
            DpopProofInvalid | DpopProofWrongTarget | DpopProofStale | DpopProofReplayed => "invalid_dpop_proof",
            DpopNonceRequired => "use_dpop_nonce",
            DpopProofMissing => "invalid_request",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            ConsentDenied => "access_denied",
            GrantTypeUnsupported => "unsupported_grant_type",
            GrantTypeNotAllowedForClient => "unauthorized_client",
            ClientAuthenticationMissing
            | ClientAuthenticationFailedUnknownClient
            | ClientSecretWrong
            | AuthMethodNotAllowed
            | BasicAuthMalformed
            | ClientAssertionTypeUnsupported
            | ClientAssertionMalformed
            | ClientAssertionSignatureInvalid
            | ClientAssertionIssuerMismatch
            | ClientAssertionAudienceWrong
            | ClientAssertionExpired
            | ClientAssertionLifetimeTooLong
            | ClientAssertionNotYetValid
            | ClientAssertionReplayed => "invalid_client",
            CodeMalformed
            | CodeUnknown
            | CodeExpired
            | CodeSessionEnded
            | CodeAlreadyRedeemed
            | CodeIssuedToOtherClient
            | RedirectUriMissingAtToken
            | RedirectUriMismatch
            | PkceVerifierMismatch
            | PkceVerifierUnexpected
            | RefreshTokenMalformed
            | RefreshTokenUnknown
            | RefreshTokenExpired
            | RefreshTokenRevoked
            | RefreshTokenReused
            | RefreshTokenIssuedToOtherClient
            | RefreshTokenRotated
            | UserDisabled
            | UserUnknown
            | ConsentRevoked
            | DpopKeyMismatch => "invalid_grant",
            AccessTokenMissing => "invalid_request",
            AccessTokenMalformed
            | AccessTokenUnknown
            | AccessTokenExpired
            | AccessTokenRevoked
            | AccessTokenAudienceMismatch
            | AccessTokenDpopBound
            | IdTokenAsAccessToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            TokenTypeUnsupported => "unsupported_token_type",
            // RFC 7009 §2.2.1 leaves the code to RFC 6749 §5.2; the client is not authorized for
            // this token (Keycloak and Hydra answer the same).
            TokenIssuedToOtherClient => "unauthorized_client",
            IntrospectionClientNotConfidential => "invalid_client",
            InternalError | ClientSecretUnreadable => "server_error",
            // RFC 6749 §4.1.2.1 defines it for the authorization endpoint, as the redirect's
            // stand-in for a 503; the token and userinfo endpoints send it with the 503 itself.
            StoreUnavailable => "temporarily_unavailable",
            // RFC 6749 defines no code for it; the retry-later code is the closest, with a 429.
            RateLimited => "temporarily_unavailable",
        }
    }

    /// The HTTP status of a direct (non-redirect) error response.
    pub fn status(self) -> u16 {
        use Reason::*;
        if self == RateLimited {
            return 429;
        }
        match self.error() {
            "invalid_client" => 401,
            "invalid_token" => 401,
            "insufficient_scope" => 403,
            "server_error" => 500,
            "temporarily_unavailable" => 503,
            _ => match self {
                AccessTokenMissing => 401,
                RegistrationDisabled => 404,
                BodyTooLarge => 413,
                HeadersTooLarge => 431,
                _ => 400,
            },
        }
    }

    /// One plain sentence saying what went wrong; safe to show to anyone.
    pub fn description(self) -> &'static str {
        use Reason::*;
        match self {
            ParameterMissing => "A required parameter is missing.",
            ParameterDuplicated => "A parameter was sent more than once; each may appear only once.",
            ParameterInvalid => "A parameter has a value that cannot be used.",
            ContentTypeUnsupported => "The request body must be application/x-www-form-urlencoded (or JSON).",
            BodyMalformed => "The request body could not be decoded.",
            BodyTooLarge => "The request body is larger than this provider accepts.",
            HeadersTooLarge => "The request's header fields are larger than this provider accepts.",
            ClientUnknown => "The client_id is not registered with this provider.",
            RedirectUriNotRegistered => "The redirect_uri is not registered for this client.",
            RedirectUriRequired => "The client has several registered redirect URIs, so redirect_uri is required.",
            ResponseTypeUnsupported => "Only response_type=code is supported.",
            ScopeNotAllowed => "A requested scope is unknown or not allowed for this client.",
            PkceChallengeRequired => "This client must send a PKCE code_challenge (S256).",
            PkceMethodNotAllowed => "The code_challenge_method is not allowed for this client; use S256.",
            PkceChallengeMalformed => "The code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~.",
            LoginRequired => "prompt=none was requested but the user is not logged in.",
            ConsentRequired => "prompt=none was requested but the user has not consented to these scopes.",
            ConsentDenied => "The user denied the authorization request.",
            InteractionExpired => {
                "The login or consent step expired or was already completed; start again at /authorize."
            }
            RequestUriUnknown => "The request_uri was not issued by this provider's /par endpoint.",
            RequestUriUsed => "The request_uri was already used; push the request again for a new one.",
            RequestUriExpired => "The request_uri has expired; push the request again and redirect at once.",
            RequestUriClientMismatch => {
                "The request_uri was pushed by a different client than the client_id sent with it."
            }
            ParRequired => "This client must push its authorization requests to /par and send the request_uri.",
            IdTokenHintInvalid => "The id_token_hint is not an ID token issued by this provider.",
            IdTokenHintClientMismatch => "The client_id differs from the client the id_token_hint was issued to.",
            PostLogoutRedirectUriNotRegistered => "The post_logout_redirect_uri is not registered for this client.",
            PostLogoutRedirectUriWithoutClient => {
                "A post_logout_redirect_uri needs an id_token_hint or a client_id to say which client registered it."
            }
            RegistrationDisabled => "Dynamic client registration is turned off on this provider.",
            RegistrationTokenInvalid => {
                "Registration needs the initial access token, and this request did not carry it."
            }
            RegistrationAccessTokenInvalid => "The registration access token is missing, wrong, or not this client's.",
            ClientMetadataInvalid => "A client metadata field has a value this provider cannot register.",
            RedirectUriInvalid => "A redirect URI offered for registration cannot be registered.",
            SoftwareStatementUnsupported => "This provider does not accept software statements.",
            GrantTypeUnsupported => "This grant_type is not supported.",
            GrantTypeNotAllowedForClient => "This client is not allowed to use this grant_type.",
            ClientAuthenticationMissing => "The client did not authenticate and sent no client_id.",
            ClientAuthenticationFailedUnknownClient => "Client authentication failed: the client_id is not registered.",
            ClientSecretWrong => "Client authentication failed: the client secret is wrong.",
            AuthMethodNotAllowed => "The client authenticated with a method it is not registered for.",
            MultipleAuthMethods => "The client used more than one authentication method in one request.",
            BasicAuthMalformed => "The Authorization: Basic header could not be decoded.",
            ClientIdConflict => "The client_id in the body differs from the one in the Authorization header.",
            ClientAssertionTypeUnsupported => "The client_assertion_type is not the JWT bearer type.",
            ClientAssertionMalformed => "The client assertion is not a signed JWT with iss, sub, aud, exp and jti.",
            ClientAssertionSignatureInvalid => {
                "The client assertion's signature does not verify with the client's registered keys."
            }
            ClientAssertionIssuerMismatch => "The client assertion's iss and sub must both be the client_id.",
            ClientAssertionAudienceWrong => "The client assertion's aud is not this provider's issuer or endpoint URL.",
            ClientAssertionExpired => "The client assertion has expired (or the client's clock is behind).",
            ClientAssertionLifetimeTooLong => {
                "The client assertion expires too far in the future; sign short-lived assertions."
            }
            ClientSecretUnreadable => {
                "The client's sealed secret cannot be opened on this server, so its client_secret_jwt assertion cannot be checked."
            }
            ClientAssertionNotYetValid => "The client assertion is dated in the future: the client's clock is ahead.",
            ClientAssertionReplayed => "The client assertion was already used; sign a new one for each request.",
            CodeMalformed => "The authorization code was altered on its way back: it is not the value that was issued.",
            CodeUnknown => "The authorization code was not issued by this provider.",
            CodeExpired => "The authorization code has expired.",
            CodeSessionEnded => {
                "The user signed out of the session this authorization code was issued in before it was redeemed."
            }
            CodeAlreadyRedeemed => "The authorization code was already used; tokens issued from it have been revoked.",
            CodeIssuedToOtherClient => "The authorization code was issued to a different client.",
            RedirectUriMissingAtToken => {
                "redirect_uri was sent to /authorize, so the token request must send the same value."
            }
            RedirectUriMismatch => "redirect_uri differs from the one sent to /authorize.",
            PkceVerifierMissing => "The code was requested with a code_challenge, so code_verifier is required.",
            PkceVerifierMalformed => "The code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~.",
            PkceVerifierMismatch => "The code_verifier does not match the code_challenge sent to /authorize.",
            PkceVerifierUnexpected => {
                "A code_verifier was sent but /authorize received no code_challenge for this code."
            }
            RefreshTokenMalformed => "The refresh token was altered: it is not the value that was issued.",
            RefreshTokenUnknown => "The refresh token was not issued by this provider.",
            RefreshTokenExpired => "The refresh token has expired.",
            RefreshTokenRevoked => "The refresh token has been revoked.",
            RefreshTokenReused => "The refresh token was already rotated; its whole family has been revoked.",
            RefreshTokenIssuedToOtherClient => "The refresh token was issued to a different client.",
            RefreshTokenRotated => {
                "The refresh token was already exchanged for a newer one; only the newest refresh token is active."
            }
            ScopeBroadened => "A refresh may narrow the scope but never add to it.",
            ResourceInvalid => "A resource indicator must be an absolute URI without a #fragment.",
            DeviceCodeUnknown => "The device code was not issued by this provider (or has been swept).",
            DeviceCodeIssuedToOtherClient => "The device code was issued to a different client.",
            DeviceCodeExpired => "The device code has expired; start a new device authorization.",
            DeviceCodeAlreadyUsed => "The device code was already exchanged for tokens; it is good for one exchange.",
            DeviceAuthorizationPending => "The user has not yet approved the device; keep polling at the interval.",
            DevicePollingTooFast => {
                "The device polled sooner than its interval allows; wait 5 seconds longer between polls from now on."
            }
            DeviceAccessDenied => "The user denied the device's request.",
            UserCodeUnknown => "No device is waiting for this code; check it against the device's screen.",
            UserCodeExpired => "This code has expired; start again on the device for a new one.",
            UserCodeUsed => "This code was already used; start again on the device for a new one.",
            ResourceUnknown => "No resource with this indicator is registered with this provider.",
            ResourceNotAllowed => "This client is not registered for the requested resource.",
            ResourceNotGranted => "The token request names a resource the authorization request did not ask for.",
            ResourceAmbiguous => {
                "The grant covers several resources; the token request must name the one this token is for."
            }
            ResourceOnePerToken => {
                "An access token is for one resource; request one token per resource (with the refresh token)."
            }
            DpopProofInvalid => "The DPoP proof is not a valid proof of possession (RFC 9449 §4.3).",
            DpopProofWrongTarget => "The DPoP proof was made for another HTTP method or URL (htm, htu).",
            DpopProofStale => {
                "The DPoP proof's iat is too far from the server's time: a stale proof, or clocks that disagree."
            }
            DpopProofReplayed => "The DPoP proof was already used; make a new proof (new jti) for every request.",
            DpopNonceRequired => "The DPoP proof must carry the nonce from the DPoP-Nonce header; retry with it.",
            DpopKeyMismatch => "The grant or token is bound to a different DPoP key than the proof's.",
            DpopProofMissing => "A DPoP proof is required for this request and none was sent (DPoP header).",
            UserDisabled => "The user behind this grant is disabled.",
            UserUnknown => "The user behind this grant no longer exists.",
            ConsentRevoked => "The user withdrew consent for this client; the grant no longer holds.",
            AccessTokenMissing => "No bearer access token was sent.",
            AccessTokenMalformed => "The access token was altered: it is not the value that was issued.",
            AccessTokenUnknown => "The access token was not issued by this provider.",
            AccessTokenExpired => "The access token has expired.",
            AccessTokenRevoked => "The access token has been revoked.",
            AccessTokenAudienceMismatch => {
                "The access token was issued for another resource (its audience), not for this endpoint."
            }
            IdTokenAsAccessToken => "An ID token was sent as the access token; send the access_token instead.",
            AccessTokenDpopBound => {
                "The access token is DPoP-bound: send it with the DPoP scheme and a proof, not as Bearer."
            }
            InsufficientScope => "The access token lacks the scope this endpoint needs.",
            TokenTypeUnsupported => "The token_type_hint must be access_token or refresh_token.",
            TokenIssuedToOtherClient => {
                "The token was issued to a different client; a client may revoke only its own tokens."
            }
            IntrospectionClientNotConfidential => {
                "Introspection needs client authentication; a public client (no secret) cannot introspect."
            }
            InternalError => "Candor failed internally; the trace id identifies the failure in its logs.",
            StoreUnavailable => {
                "The provider cannot reach its store for the moment; nothing was changed. Retry shortly."
            }
            RateLimited => "This client sent more token requests than its rate limit allows; retry after Retry-After.",
        }
    }

    /// Whether the reason is a failed client authentication (RFC 6749 §5.2: 401 + WWW-Authenticate when Basic was used).
    pub fn is_client_authentication(self) -> bool {
        self.error() == "invalid_client"
    }

    /// Parses a reason from its stable code.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether a fact may be shown to the party that sent the request under the `standard` disclosure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// Safe to show always: timestamps, kinds of difference, parameter names.
    Public,
    /// Values Candor stored (the expected redirect_uri...): shown under `detailed` disclosure only.
    Detailed,
    /// Internal detail (a store error's text): logged and kept for `explain`, never sent on the wire.
    Internal,
}

/// One piece of evidence behind a rejection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub name: &'static str,
    pub value: Value,
    pub disclosure: Disclosure,
}

/// Structured evidence: expected vs received, timestamps, related trace ids. Never a secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Facts(pub Vec<Fact>);

impl Facts {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|f| f.name == name).map(|f| &f.value)
    }

    /// The facts as a JSON object, keeping only those allowed under `detailed` (all) or `standard`.
    pub fn to_json(&self, detailed: bool) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .filter(|f| match f.disclosure {
                Disclosure::Public => true,
                Disclosure::Detailed => detailed,
                Disclosure::Internal => false,
            })
            .map(|f| (f.name.to_string(), f.value.clone()))
            .collect()
    }
}

/// A refusal: why, and the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: Reason,
    pub facts: Facts,
}

impl Rejection {
    pub fn new(reason: Reason) -> Self {
        Rejection { reason, facts: Facts::default() }
    }

    /// Adds a fact that is always safe to show.
    pub fn with(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.facts.0.push(Fact { name, value: value.into(), disclosure: Disclosure::Public });
        self
    }

    /// Adds a fact showing a value Candor stored; shown under `detailed` disclosure only.
    pub fn with_detail(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.facts.0.push(Fact { name, value: value.into(), disclosure: Disclosure::Detailed });
        self
    }

    /// Adds internal detail: logged under the trace id, never sent to the client.
    pub fn with_internal(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.facts.0.push(Fact { name, value: value.into(), disclosure: Disclosure::Internal });
        self
    }

    /// A store failure: `store_unavailable` (503, retry later) when the store could not be reached
    /// or written, `internal_error` otherwise. The store's message is an internal fact: logged
    /// under the trace id, never sent.
    pub fn store(e: crate::store::StoreError) -> Self {
        let reason = match e {
            crate::store::StoreError::Unavailable(_) => Reason::StoreUnavailable,
            _ => Reason::InternalError,
        };
        Rejection::new(reason).with_internal("store", e.to_string())
    }

    pub fn missing(parameter: &'static str) -> Self {
        Rejection::new(Reason::ParameterMissing).with("parameter", parameter)
    }

    pub fn duplicated(parameter: &str) -> Self {
        Rejection::new(Reason::ParameterDuplicated).with("parameter", parameter)
    }

    pub fn invalid(parameter: &'static str, problem: impl Into<String>) -> Self {
        Rejection::new(Reason::ParameterInvalid).with("parameter", parameter).with("problem", problem.into())
    }

    /// An internal failure: the detail goes to the log under the trace id, not to the client.
    pub fn internal() -> Self {
        Rejection::new(Reason::InternalError)
    }

    /// The one-line `error_description`: the reason's sentence, then the facts that explain this case.
    ///
    /// RFC 6749 §5.2: "Values for the "error_description" parameter MUST NOT include characters
    /// outside the set %x20-21 / %x23-5B / %x5D-7E": double quotes become single quotes, a
    /// backslash a slash, anything else outside the set `?`.
    pub fn describe(&self, detailed: bool) -> String {
        self.describe_raw(detailed)
            .chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                ' '..='~' => c,
                _ => '?',
            })
            .collect()
    }

    fn describe_raw(&self, detailed: bool) -> String {
        let mut out = self.reason.description().to_string();
        let facts = self.facts.to_json(detailed);
        if !facts.is_empty() {
            let parts: Vec<String> = facts
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            out.push_str(" (");
            out.push_str(&parts.join("; "));
            out.push(')');
        }
        out
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.describe(true))
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_unique_code_that_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            assert!(r.description().ends_with('.'));
        }
    }

    #[test]
    fn client_authentication_failures_are_401_invalid_client() {
        assert_eq!(Reason::ClientSecretWrong.status(), 401);
        assert_eq!(Reason::ClientSecretWrong.error(), "invalid_client");
        assert_eq!(Reason::CodeExpired.status(), 400);
        assert_eq!(Reason::GrantTypeNotAllowedForClient.error(), "unauthorized_client");
    }

    #[test]
    fn descriptions_stay_within_the_rfc_6749_character_set() {
        let r = Rejection::new(Reason::CodeMalformed).with("suffix", "#\"_=_\\ é\n");
        let d = r.describe(true);
        assert!(d.chars().all(|c| c == ' ' || c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)), "{d}");
    }

    #[test]
    fn standard_disclosure_hides_stored_values() {
        let r = Rejection::new(Reason::RedirectUriMismatch)
            .with("difference", "trailing_slash")
            .with_detail("expected", "https://a/cb/");
        assert!(r.describe(true).contains("https://a/cb/"));
        assert!(!r.describe(false).contains("https://a/cb/"));
        assert!(r.describe(false).contains("trailing_slash"));
    }
}
