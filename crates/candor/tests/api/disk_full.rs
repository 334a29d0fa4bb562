//! A full disk under a SQLite store: a small tmpfs of the test's own, mounted over the store's
//! directory in a mount namespace of the server's (`unshare`, so the test needs no mount of its
//! own on the machine), and filled and emptied from outside through `/proc/<pid>/root`.
//!
//! While the disk is full, every request is either answered in full, with tokens that were
//! stored, or refused with 503 `store_unavailable` having changed nothing, and the log says that
//! the disk is full. Once there is room again, the refused requests succeed without a restart,
//! every token received works, and the file is intact.

use crate::helpers::{assert_reason, csrf_of, location, pkce};
use crate::served::{Load, PASSWORD, REDIRECT, seed, start_command};
use reqwest::StatusCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// In the server's own mount namespace: a 4 MiB tmpfs over `$1`, the seeded store `$2` copied
/// onto it (its WAL too, if the admin commands left one), then `$3 serve --config $4`.
const MOUNT: &str = r#"mount -t tmpfs -o size=4m candor-test-disk "$1" && cp "$2"/candor.db "$1"/ \
    && { [ ! -e "$2"/candor.db-wal ] || cp "$2"/candor.db-wal "$1"/; } && exec "$3" serve --config "$4""#;

/// Writes zeros to `path` until the disk is full; returns how many bytes fitted.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => return written,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return written,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

/// A browser's sign-in while the disk may be full: /authorize either shows the login form or sends
/// `temporarily_unavailable` back to the client, and signing in (which stores a session) either
/// works, on to consent, or is refused with the 503 page.
async fn sign_in(base: &str) -> StatusCode {
    let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let p = pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s"),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = b.get(format!("{base}/authorize")).query(&params).send().await.unwrap();
    let status = r.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(r.text().await.unwrap().contains("store_unavailable"));
        return status;
    }
    assert!(status.is_redirection(), "{status}");
    let to = location(&r);
    // Once the client and its redirect URI are verified, /authorize sends a refusal back to the
    // client (RFC 6749 §4.1.2.1): the interaction could not be stored.
    if to.starts_with(REDIRECT) {
        assert!(to.contains("error=temporarily_unavailable"), "{to}");
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let page = b.get(format!("{base}{to}")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", csrf_of(&page)), ("username", "alice".into()), ("password", PASSWORD.into())];
    let action = page.split(r#"action=""#).nth(1).unwrap().split('"').next().unwrap();
    let r = b.post(format!("{base}{action}")).form(&form).send().await.unwrap();
    let status = r.status();
    let page = r.text().await.unwrap();
    assert!(
        status.is_redirection() || (status == StatusCode::SERVICE_UNAVAILABLE && page.contains("store_unavailable")),
        "{status}: {page}"
    );
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_503_keeps_every_token_it_answered_and_recovers_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let seeded = dir.path().join("seeded");
    std::fs::create_dir(&seeded).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("candor.toml");
    // Seeded on the real disk, then copied onto the tmpfs mounted over `disk`.
    let secret = seed(&config, &base, port, &format!("sqlite://{}/candor.db", seeded.display()));
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(&seeded.display().to_string(), &disk.display().to_string()),
    )
    .unwrap();
    std::fs::create_dir(&disk).unwrap();
    let log = dir.path().join("serve.log");
    let mut serve = Command::new("unshare");
    serve
        .args(["--mount", "--map-root-user", "sh", "-c", MOUNT, "sh"])
        .arg(&disk)
        .arg(&seeded)
        .arg(env!("CARGO_BIN_EXE_candor"))
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut node = start_command(serve, &base).await;
    // The server's view of its directory: the tmpfs, not the empty directory the test sees.
    let inside: PathBuf = format!("/proc/{}/root{}", node.id(), disk.display()).into();
    assert!(inside.join("candor.db").exists(), "the store is not on the server's tmpfs");
    assert!(!disk.join("candor.db").exists(), "the tmpfs is visible outside the server's namespace");

    let load = Load { base: base.clone(), secret };
    let (code, verifier) = load.code().await.unwrap();
    let (status, first) = load.exchange(&code, &verifier).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{first}");
    let mut access_tokens = vec![first["access_token"].as_str().unwrap().to_string()];
    let mut refresh = first["refresh_token"].as_str().unwrap().to_string();
    // A code issued before the disk fills, exchanged while it is full.
    let (late_code, late_verifier) = load.code().await.unwrap();

    let filler = inside.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0);

    // Rotate until the store has refused three times: each rotation either returned tokens that
    // were stored, or changed nothing (the same refresh token is tried again).
    let (mut refused, mut rotated) = (0, 0);
    for _ in 0..5_000 {
        let (status, body) = load.rotate(&refresh).await.unwrap();
        match status {
            StatusCode::OK => {
                access_tokens.push(body["access_token"].as_str().unwrap().to_string());
                refresh = body["refresh_token"].as_str().unwrap().to_string();
                rotated += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_reason(&body, "store_unavailable", "temporarily_unavailable");
                assert!(body.get("refresh_token").is_none() && body.get("access_token").is_none());
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            _ => panic!("rotation on a full disk: {status} {body}"),
        }
    }
    assert_eq!(refused, 3, "the store never refused a write on a full disk ({rotated} rotations)");
    let (status, body) = load.exchange(&late_code, &late_verifier).await.unwrap();
    let late_exchanged = match status {
        StatusCode::OK => {
            access_tokens.push(body["access_token"].as_str().unwrap().to_string());
            true
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_reason(&body, "store_unavailable", "temporarily_unavailable");
            false
        }
        _ => panic!("code exchange on a full disk: {status} {body}"),
    };
    sign_in(&base).await;
    // Every token answered while the disk was full is usable while it still is.
    let http = reqwest::Client::new();
    for token in &access_tokens {
        let r = http.get(format!("{base}/userinfo")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("the disk holding the store is full"), "the log does not say the disk is full:\n{logged}");

    // Room again: the refused rotation and exchange now take effect, once, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = load.rotate(&refresh).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    // The code, if its exchange was refused, exchanges now. (If it was exchanged while the disk
    // was full, exchanging it again would be a replay, which revokes its tokens: not tried.)
    if !late_exchanged {
        let (status, body) = load.exchange(&late_code, &late_verifier).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        access_tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    assert!(sign_in(&base).await.is_redirection());
    for token in &access_tokens {
        let r = http.get(format!("{base}/userinfo")).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    // It rotated once: again is a replay (which revokes the grant's tokens).
    assert_eq!(load.rotate(&refresh).await.unwrap().1["reason"], "refresh_token_reused");

    // The file is intact. It is read from a copy: SQLite resolves `/proc/<pid>/root` to `/`,
    // the test's own view, and the tmpfs goes with the server. Nothing writes while it is copied.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for file in ["candor.db", "candor.db-wal"] {
        if inside.join(file).exists() {
            std::fs::copy(inside.join(file), copy.join(file)).unwrap();
        }
    }
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", copy.join("candor.db").display())).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
    assert_eq!(check, "ok");
    pool.close().await;
    node.kill().unwrap();
    node.wait().unwrap();
    eprintln!("{filled} bytes filled the disk; {rotated} rotations stored on it, then 3 refused");
}
