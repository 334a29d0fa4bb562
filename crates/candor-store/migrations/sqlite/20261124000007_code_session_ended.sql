-- A code not yet redeemed when the session it was issued in is logged out of can no longer be
-- redeemed: logout marks it, and the claim of a code skips a marked one (the token request is
-- told `code_session_ended`, not that the code is unknown or expired).
ALTER TABLE codes ADD COLUMN session_ended_at INTEGER;
