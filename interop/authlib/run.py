"""Python authlib (OAuth2Session + OIDC ID token validation) against `candor dev`.

Run: cargo build -p candor && pip install -r interop/authlib/requirements.txt && python3 interop/authlib/run.py
"""
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import urljoin

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # the dev issuer is http on loopback

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CANDOR = os.environ.get("CANDOR_BIN", str(ROOT / "target" / "debug" / "candor"))
REDIRECT = "http://localhost:3000/callback"


def start_candor():
    """Starts `candor dev --port 0 --ephemeral` and reads issuer, password and secret from its banner."""
    proc = subprocess.Popen([CANDOR, "dev", "--port", "0", "--ephemeral"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    found, deadline = {}, time.time() + 30
    for line in proc.stdout:
        t = line.strip()
        for key in ("issuer", "password", "secret"):
            if t.startswith(key + ":") and key not in found:
                found[key] = t[len(key) + 1:].strip()
        if t.endswith("/admin/rejections") or time.time() > deadline:
            break
    if len(found) != 3:
        proc.kill()
        raise SystemExit(f"candor dev did not print issuer, password and secret: {found}")
    return proc, found


def browse(authorize_url, username, password):
    """A browser without JavaScript: Candor's login and consent forms with a cookie jar, stopping at the redirect URI."""
    s = requests.Session()
    r = s.get(authorize_url, allow_redirects=False)
    for _ in range(8):
        if r.status_code in (302, 303):
            location = r.headers["location"]
            if location.startswith(REDIRECT):
                return location
            r = s.get(urljoin(authorize_url, location), allow_redirects=False)
            continue
        if r.status_code != 200:
            raise AssertionError(f"HTTP {r.status_code} during login: {r.text[:300]}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
        action = re.search(r'action="([^"]+)"', r.text).group(1)
        form = {"csrf": csrf, "username": username, "password": password} if action.endswith("/login") else {"csrf": csrf, "decision": "allow"}
        r = s.post(urljoin(authorize_url, action), data=form, allow_redirects=False)
    raise AssertionError("too many steps")


def main():
    proc, dev = start_candor()
    try:
        meta = requests.get(dev["issuer"] + "/.well-known/openid-configuration").json()
        jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"]).json())
        state = {}

        def session():
            return OAuth2Session("demo-app", dev["secret"], scope="openid profile email offline_access", redirect_uri=REDIRECT,
                                 code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")

        def authorize():
            s = session()
            verifier, nonce = generate_token(48), generate_token(20)
            uri, st = s.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
            state.update(session=s, verifier=verifier, nonce=nonce, callback=browse(uri, "demo", dev["password"]), expected_state=st)

        def exchange():
            authorize()
            token = state["session"].fetch_token(meta["token_endpoint"], authorization_response=state["callback"], code_verifier=state["verifier"])
            state["token"] = token

        def id_token():
            t = state["token"]
            claims = jwt.decode(t["id_token"], jwks, claims_cls=CodeIDToken,
                                claims_options={"iss": {"essential": True, "value": meta["issuer"]}},
                                claims_params={"nonce": state["nonce"], "client_id": "demo-app", "access_token": t["access_token"]})
            claims.validate(leeway=60)
            assert claims["aud"] == "demo-app", claims

        def userinfo():
            info = state["session"].get(meta["userinfo_endpoint"]).json()
            assert info.get("preferred_username") == "demo" and info.get("email") == "demo@example.com", info

        def refresh():
            old = state["token"]["refresh_token"]
            new = state["session"].refresh_token(meta["token_endpoint"], refresh_token=old)
            assert new.get("refresh_token") and new["refresh_token"] != old, new
            state["refreshed"] = new

        def client_credentials():
            s = OAuth2Session("demo-app", dev["secret"], token_endpoint_auth_method="client_secret_basic")
            t = s.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
            assert t.get("access_token") and "refresh_token" not in t, t

        def introspection():
            new = state["refreshed"]
            r = state["session"].introspect_token(meta["introspection_endpoint"], token=new["access_token"])
            body = r.json()
            assert r.status_code == 200 and body["active"] is True and body["client_id"] == "demo-app", body
            old = state["token"]["refresh_token"]
            body = state["session"].introspect_token(meta["introspection_endpoint"], token=old, token_type_hint="refresh_token").json()
            assert body["active"] is False, body

        def revocation():
            new = state["refreshed"]
            r = state["session"].revoke_token(meta["revocation_endpoint"], token=new["refresh_token"], token_type_hint="refresh_token")
            assert r.status_code == 200, r.text
            body = state["session"].introspect_token(meta["introspection_endpoint"], token=new["access_token"]).json()
            assert body["active"] is False, body

        def expect_invalid_grant(phrase, fn):
            """The refusal is invalid_grant, says why in error_description, and carries a trace id."""
            try:
                fn()
            except OAuthError as e:
                assert e.error == "invalid_grant", e.error
                assert phrase in (e.description or ""), e.description
                assert "[trace " in (e.description or ""), e.description
                return
            raise AssertionError("the request succeeded")

        def replay():
            s = session()
            expect_invalid_grant("already used", lambda: s.fetch_token(meta["token_endpoint"], authorization_response=state["callback"], code_verifier=state["verifier"]))

        def wrong_verifier():
            authorize()
            expect_invalid_grant("does not match the code_challenge", lambda: state["session"].fetch_token(meta["token_endpoint"], authorization_response=state["callback"], code_verifier=generate_token(48)))

        def discovery():
            assert meta["issuer"] == dev["issuer"], meta["issuer"]

        checks = [
            ("discovery", discovery),
            ("authorization with PKCE S256 through the login form, code exchange", exchange),
            ("ID token validated by authlib (signature via JWKS, iss, aud, exp, nonce, at_hash)", id_token),
            ("userinfo", userinfo),
            ("refresh rotates the refresh token", refresh),
            ("client_credentials", client_credentials),
            ("introspection (RFC 7662): the access token is active, a rotated refresh token is not", introspection),
            ("revocation (RFC 7009): the refresh token takes its family with it", revocation),
            ("a replayed code is refused with invalid_grant", replay),
            ("a wrong verifier is refused with invalid_grant", wrong_verifier),
        ]
        passed = 0
        for label, fn in checks:
            try:
                fn()
            except Exception:  # report which check failed, then stop
                print(f"FAIL {label}")
                traceback.print_exc(file=sys.stdout)
                print(f"authlib: {passed} passed, 1 failed")
                return 1
            passed += 1
            print(f"ok   {label}")
        print(f"authlib: {passed} passed, 0 failed")
        return 0
    finally:
        proc.kill()


if __name__ == "__main__":
    sys.exit(main())
