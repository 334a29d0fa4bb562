//! Discovery, JWKS, per-client signing algorithms and key rotation.

use crate::helpers::*;

#[tokio::test]
async fn discovery_advertises_every_endpoint_and_they_answer() {
    let app = spawn_app().await;
    let doc: serde_json::Value =
        reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], app.base);
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_parameter_supported"], false);
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    assert!(doc["claims_supported"].as_array().unwrap().contains(&"sid".into()));
    assert!(doc["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&"RS256".into()));
    for (k, method) in [
        ("jwks_uri", "GET"),
        ("userinfo_endpoint", "GET"),
        ("token_endpoint", "POST"),
        ("authorization_endpoint", "GET"),
        ("end_session_endpoint", "GET"),
    ] {
        let url = doc[k].as_str().unwrap();
        assert!(url.starts_with(&app.base), "{k}");
        let r = reqwest::Client::new().request(method.parse().unwrap(), url).send().await.unwrap();
        assert_ne!(r.status(), 404, "{k} answers");
    }
}

#[tokio::test]
async fn clients_get_id_tokens_in_their_registered_algorithm() {
    let app = spawn_app().await;
    for (client, alg) in [(ES, "ES256"), (ED, "EdDSA"), (WEB, "RS256")] {
        let (cb, p) = app.code_for(client, WEB_REDIRECT, "openid").await;
        let (_, body, _) = app
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &cb.code()),
                    ("redirect_uri", WEB_REDIRECT),
                    ("code_verifier", &p.verifier),
                ],
                Some(client),
            )
            .await;
        let token = body["id_token"].as_str().unwrap();
        assert_eq!(jwt_parts(token).0["alg"], alg);
        let claims = verify_jwt(&app, token).await;
        assert_eq!(claims["aud"], client);
    }
}

#[tokio::test]
async fn a_rotated_key_signs_new_tokens_and_the_old_one_stays_published() {
    let app = spawn_app().await;
    let before = app.tokens("openid").await;
    let old_kid = jwt_parts(before["id_token"].as_str().unwrap()).0["kid"].clone();
    let kids = candor_server::rotate_keys(
        app.store.as_ref(),
        &[candor_core::model::SigningAlg::RS256],
        candor_core::clock::Clock::now(&app.clock),
    )
    .await
    .unwrap();
    app.state.reload_keys().await.unwrap();
    let after = app.tokens("openid").await;
    let new_kid = jwt_parts(after["id_token"].as_str().unwrap()).0["kid"].clone();
    assert_eq!(new_kid, kids[0].as_str());
    assert_ne!(new_kid, old_kid);
    // Both verify against the published JWKS.
    verify_jwt(&app, before["id_token"].as_str().unwrap()).await;
    verify_jwt(&app, after["id_token"].as_str().unwrap()).await;
    assert_eq!(app.store.keys().await.unwrap().iter().filter(|k| k.retired_at.is_some()).count(), 1);
}

#[tokio::test]
async fn reason_pages_exist_for_every_reason() {
    let app = spawn_app().await;
    for reason in candor_core::Reason::ALL {
        let r = reqwest::get(app.url(&format!("/errors/{}", reason.code()))).await.unwrap();
        assert_eq!(r.status(), 200, "{}", reason.code());
    }
    assert_eq!(reqwest::get(app.url("/errors/not_a_reason")).await.unwrap().status(), 404);
}
