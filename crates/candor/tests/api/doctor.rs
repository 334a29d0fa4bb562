//! `candor doctor` on every shared case where the requests show the mistake: the finding it must report.

use serde_json::Value;
use std::process::Command;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize(client: &str, redirect: &str) -> String {
    format!(
        "https://id.example.com/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    )
}

/// Runs doctor with `--json`; returns (exit success, finding ids).
fn doctor(args: &[&str]) -> (bool, Vec<String>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_candor")).arg("doctor").arg("--json").args(args).output().unwrap();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let ids = report["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect();
    (out.status.success(), ids, report)
}

#[test]
fn a_consistent_exchange_passes() {
    let token = format!(
        "curl -u app:secret https://id.example.com/token -d grant_type=authorization_code -d code=Q8f2kX -d redirect_uri=https://app.example.com/cb -d code_verifier={VERIFIER}"
    );
    let (ok, ids, _) = doctor(&[
        "--authorize-url",
        &authorize("app", "https://app.example.com/cb"),
        "--callback-url",
        "https://app.example.com/cb?code=Q8f2kX&state=s1",
        "--token-request",
        &token,
    ]);
    assert!(ok, "{ids:?}");
}

#[test]
fn case_01_a_code_exchanged_90_seconds_later_is_too_old() {
    let token = format!(
        "grant_type=authorization_code\nclient_id=app\nclient_secret=s\ncode=Q8f2kX\nredirect_uri=https://app.example.com/cb\ncode_verifier={VERIFIER}"
    );
    let (ok, ids, _) = doctor(&[
        "--authorize-url",
        &authorize("app", "https://app.example.com/cb"),
        "--token-request",
        &token,
        "--callback-at",
        "2026-11-23T10:00:00Z",
        "--token-at",
        "2026-11-23T10:01:30Z",
    ]);
    assert!(!ok);
    assert!(ids.contains(&"code_too_old".to_string()), "{ids:?}");
}

#[test]
fn case_02_a_trailing_slash_difference_is_shown_character_by_character() {
    let token = format!(
        "curl https://id.example.com/token -u app:s -d grant_type=authorization_code -d code=c -d redirect_uri=https://app.example.com/callback -d code_verifier={VERIFIER}"
    );
    let (ok, ids, report) =
        doctor(&["--authorize-url", &authorize("app", "https://app.example.com/callback/"), "--token-request", &token]);
    assert!(!ok);
    assert!(ids.contains(&"redirect_uri_mismatch".to_string()), "{ids:?}");
    assert!(report.to_string().contains("trailing_slash"));
}

#[test]
fn case_03_a_code_with_the_fragment_kept_is_found() {
    let token = format!(
        "curl https://id.example.com/token -u app:s -d grant_type=authorization_code -d code=Q8f2kX%23_%3D_ -d redirect_uri=https://app.example.com/cb -d code_verifier={VERIFIER}"
    );
    let (ok, ids, _) = doctor(&[
        "--authorize-url",
        &authorize("app", "https://app.example.com/cb"),
        "--callback-url",
        "https://app.example.com/cb?code=Q8f2kX&state=s1#_=_",
        "--token-request",
        &token,
    ]);
    assert!(!ok);
    assert!(
        ids.contains(&"code_has_fragment".to_string()) && ids.contains(&"callback_fragment".to_string()),
        "{ids:?}"
    );
}

#[test]
fn case_04_a_json_body_with_a_badly_extracted_code_is_found() {
    let token = format!(
        r#"curl https://id.example.com/token -H 'Content-Type: application/json' -d '{{"grant_type":"authorization_code","client_id":"app","client_secret":"s","code":"Q8f2k","redirect_uri":"https://app.example.com/cb","code_verifier":"{VERIFIER}"}}'"#
    );
    let (ok, ids, _) = doctor(&[
        "--authorize-url",
        &authorize("app", "https://app.example.com/cb"),
        "--callback-url",
        "https://app.example.com/cb?code=Q8f2kX&state=s1",
        "--token-request",
        &token,
    ]);
    assert!(!ok);
    assert!(ids.contains(&"json_body".to_string()) && ids.contains(&"code_truncated".to_string()), "{ids:?}");
}

#[test]
fn case_05_the_same_code_in_two_token_requests_is_found() {
    let token = format!(
        "curl https://id.example.com/token -u app:s -d grant_type=authorization_code -d code=Q8f2kX -d redirect_uri=https://app.example.com/cb -d code_verifier={VERIFIER}"
    );
    let (ok, ids, _) = doctor(&[
        "--authorize-url",
        &authorize("app", "https://app.example.com/cb"),
        "--token-request",
        &token,
        "--token-request",
        &token,
    ]);
    assert!(!ok);
    assert!(ids.contains(&"code_used_twice".to_string()), "{ids:?}");
}

#[test]
fn case_06_a_regenerated_verifier_is_found_by_computing_s256() {
    let token = format!(
        "curl https://id.example.com/token -d grant_type=authorization_code -d client_id=app -d code=c -d redirect_uri=https://app.example.com/cb -d code_verifier={}",
        "n".repeat(43)
    );
    let (ok, ids, report) =
        doctor(&["--authorize-url", &authorize("app", "https://app.example.com/cb"), "--token-request", &token]);
    assert!(!ok);
    assert!(ids.contains(&"pkce_verifier_mismatch".to_string()), "{ids:?}");
    assert!(report.to_string().contains(CHALLENGE));
}

#[test]
fn case_07_another_clients_credentials_are_found() {
    let token = format!(
        "curl https://id.example.com/token -u staging-app:s -d grant_type=authorization_code -d code=c -d redirect_uri=https://app.example.com/cb -d code_verifier={VERIFIER}"
    );
    let (ok, ids, _) =
        doctor(&["--authorize-url", &authorize("prod-app", "https://app.example.com/cb"), "--token-request", &token]);
    assert!(!ok);
    assert!(ids.contains(&"client_id_mismatch".to_string()), "{ids:?}");
}

#[test]
fn case_08_a_refresh_token_used_twice_is_found() {
    let refresh = "curl https://id.example.com/token -u app:s -d grant_type=refresh_token -d refresh_token=rt-1";
    let (ok, ids, _) = doctor(&["--token-request", refresh, "--token-request", refresh]);
    assert!(!ok);
    assert!(ids.contains(&"refresh_token_used_twice".to_string()), "{ids:?}");
}

#[test]
fn human_output_names_the_problem_and_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["doctor", "--token-request", "grant_type=authorization-code\ncode=abc#"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ERROR grant_type_unknown") && text.contains("fix: use grant_type=authorization_code"),
        "{text}"
    );
    assert!(text.contains("code_has_fragment"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_candor")).args(["doctor"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("at least one"));
}
