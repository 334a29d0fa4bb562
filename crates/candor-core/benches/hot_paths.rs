//! Micro-benchmarks of the per-request work on the token path, through candor-core's public API:
//! minting secrets, hashing and comparing them, PKCE, ID token signing, Basic credentials, JWT
//! access tokens and DPoP proofs, and
//! (apart, because it is three orders of magnitude slower) argon2 for human passwords.
//!
//! Run: `cargo bench -p candor-core --bench hot_paths` (add `-- --quick` for a rough pass).
// Benchmark setup, not a request path: a failure here should stop the run loudly.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use candor_core::client_auth::decode_basic;
use candor_core::id_token::{self, IdTokenInput};
use candor_core::keys::{KeyRing, generate};
use candor_core::model::{AuthMethod, Client, GrantType, SigningAlg};
use candor_core::password::{hash_password, verify_password};
use candor_core::pkce::{CodeChallenge, CodeVerifier, s256};
use candor_core::settings::Settings;
use candor_core::tokens::{Secret, SecretKind, hash_secret, hashes_equal, random_id};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main, measurement::WallTime};
use std::hint::black_box;
use std::time::Duration;

const NOW: i64 = 1_700_000_000;

/// Short runs: these are regression signals and orders of magnitude, not publication numbers.
fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
}

/// A PKCE verifier of `len` characters from the RFC 7636 alphabet.
fn verifier(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    (0..len).map(|i| ALPHABET[(i * 7 + 3) % ALPHABET.len()] as char).collect()
}

fn client(alg: SigningAlg) -> Client {
    Client {
        id: "web-app".into(),
        name: "Web app".into(),
        secret_hash: Some(hash_secret("cds_placeholder")),
        redirect_uris: vec!["https://app.example.com/callback".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        auth_method: AuthMethod::ClientSecretBasic,
        scopes: vec!["openid".into(), "profile".into(), "email".into(), "offline_access".into()],
        require_pkce: true,
        allow_plain_pkce: false,
        id_token_alg: alg,
        always_issue_refresh_token: false,
        created_at: NOW,
        jwks: None,
        require_par: false,
        access_token_format: candor_core::model::TokenFormat::Opaque,
        resources: vec![],
        require_dpop: false,
        logout: Default::default(),
        registration_token_hash: None,
        secret_sealed: None,
    }
}

fn secrets(c: &mut Criterion) {
    let mut g = c.benchmark_group("secrets");
    short(&mut g);
    for (name, kind) in [
        ("authorization_code", SecretKind::AuthorizationCode),
        ("access_token", SecretKind::AccessToken),
        ("refresh_token", SecretKind::RefreshToken),
    ] {
        g.bench_function(BenchmarkId::new("generate", name), |b| b.iter(|| Secret::generate(black_box(kind)).unwrap()));
    }
    g.bench_function("random_id", |b| b.iter(|| random_id().unwrap()));

    // A whole access token as presented (61 characters): its stored key, time of issue first.
    let token = Secret::generate(SecretKind::AccessToken).unwrap().value;
    assert_eq!(token.len(), 61);
    g.bench_function("hash_secret/access_token", |b| b.iter(|| hash_secret(black_box(&token))));
    let stored = hash_secret(&token);
    let presented = hash_secret(&token);
    g.bench_function("hashes_equal", |b| b.iter(|| hashes_equal(black_box(&presented), black_box(&stored))));
    g.finish();
}

fn pkce(c: &mut Criterion) {
    let mut g = c.benchmark_group("pkce");
    short(&mut g);
    for len in [43, 128] {
        let v = verifier(len);
        let challenge = CodeChallenge::parse(&s256(&v), Some("S256"), false).unwrap();
        // What the token endpoint does with `code_verifier`: check its shape, then hash and compare.
        g.bench_with_input(BenchmarkId::new("parse_and_verify_s256", len), &v, |b, v| {
            b.iter(|| {
                let verifier = CodeVerifier::parse(black_box(v)).unwrap();
                assert!(challenge.is_satisfied_by(&verifier));
            })
        });
    }
    g.finish();
}

fn id_tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("id_token");
    short(&mut g);
    let settings = Settings::new("https://id.example.com");
    let access_token = Secret::generate(SecretKind::AccessToken).unwrap().value;
    let records: Vec<_> = SigningAlg::ALL.iter().map(|alg| generate(*alg, NOW).unwrap()).collect();
    let keys = KeyRing::from_records(&records).unwrap();
    for alg in SigningAlg::ALL {
        let client = client(alg);
        let input = IdTokenInput {
            client: &client,
            user_id: "8f14e45fceea167a5a36dedd4bea2543",
            auth_time: NOW - 30,
            nonce: Some("n-0S6_WzA2Mj"),
            access_token: &access_token,
            sid: Some("5f0c1b6e-sid"),
        };
        // Claims building, at_hash and the signature: all of `id_token::sign`, as the grants call it.
        g.bench_function(BenchmarkId::new("sign", alg.as_str()), |b| {
            b.iter(|| id_token::sign(&keys, &settings, black_box(&input), NOW).unwrap())
        });
    }
    g.finish();
}

fn client_auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("client_auth");
    short(&mut g);
    let secret = Secret::generate(SecretKind::ClientSecret).unwrap().value;
    let header = STANDARD.encode(format!("web-app:{secret}"));
    g.bench_function("decode_basic", |b| b.iter(|| decode_basic(black_box(&header)).unwrap()));
    // decode_basic plus what `authenticate` does with the secret once the client row is loaded.
    let stored = hash_secret(&secret);
    g.bench_function("decode_basic_and_check_secret", |b| {
        b.iter(|| {
            let (_, presented) = decode_basic(black_box(&header)).unwrap();
            assert!(hashes_equal(&hash_secret(&presented), &stored));
        })
    });
    g.finish();
}

/// argon2id with the crate defaults: milliseconds per call, which is why only human passwords
/// (at login) use it and the 256-bit secrets on the token path use one SHA-256.
fn passwords(c: &mut Criterion) {
    let mut g = c.benchmark_group("password");
    g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    let stored = hash_password("correct horse battery staple").unwrap();
    g.bench_function("argon2_verify", |b| {
        b.iter(|| assert!(verify_password(black_box("correct horse battery staple"), &stored)))
    });
    g.finish();
}

/// What RFC 9068 and RFC 9449 add to a token request: a JWT access token instead of an opaque
/// one (per algorithm), and checking a DPoP proof (ES256, the algorithm most clients use).
fn access_tokens_and_dpop(c: &mut Criterion) {
    use candor_core::access_token::{Spec, mint};
    use candor_core::dpop::{Expect, verify};
    use candor_core::model::{Resource, TokenFormat};
    use candor_core::scope::Scope;
    let mut g = c.benchmark_group("access_token");
    short(&mut g);
    let settings = Settings::new("https://id.example.com");
    let records: Vec<_> = SigningAlg::ALL.iter().map(|alg| generate(*alg, NOW).unwrap()).collect();
    let keys = KeyRing::from_records(&records).unwrap();
    let client = client(SigningAlg::RS256);
    let scope = Scope::parse("openid orders:read").unwrap();
    let spec = Spec {
        grant_id: "0190f1a2b3c4d5e6f708090a0b0c0d0e",
        client: &client,
        user_id: Some("8f14e45fceea167a5a36dedd4bea2543"),
        auth_time: Some(NOW - 30),
        scope: &scope,
        resource: None,
        dpop_jkt: None,
    };
    g.bench_function("mint/opaque", |b| b.iter(|| mint(&keys, &settings, NOW, black_box(&spec)).unwrap()));
    for alg in SigningAlg::ALL {
        let resource = Resource {
            id: "https://api.example.com/".into(),
            name: "API".into(),
            scopes: vec!["orders:read".into()],
            access_token_format: TokenFormat::Jwt,
            access_token_lifetime: None,
            signing_alg: alg,
            created_at: NOW,
        };
        let spec = Spec { resource: Some(&resource), ..spec };
        g.bench_function(BenchmarkId::new("mint/jwt", alg.as_str()), |b| {
            b.iter(|| mint(&keys, &settings, NOW, black_box(&spec)).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("dpop");
    short(&mut g);
    let key = candor_core::keys::SigningKey::parse(&generate(SigningAlg::ES256, NOW).unwrap()).unwrap();
    let mut jwk = key.public_jwk();
    jwk.as_object_mut().unwrap().remove("kid");
    let claims = serde_json::json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": "https://id.example.com/token", "iat": NOW});
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let proof = key.sign_with_header(&header, &claims).unwrap();
    let expect = Expect {
        method: "POST",
        url: "https://id.example.com/token",
        now: NOW,
        leeway: 60,
        access_token: None,
        nonce: None,
    };
    g.bench_function("verify/ES256", |b| b.iter(|| verify(black_box(&proof), &expect).unwrap()));
    g.finish();
}

criterion_group!(benches, secrets, pkce, id_tokens, client_auth, passwords, access_tokens_and_dpop);
criterion_main!(benches);
