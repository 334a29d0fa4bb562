-- Codes and tokens issued from now on carry their time of issue, and their stored key (`hash`)
-- starts with it, so new keys arrive in order and the primary-key indexes grow at their right
-- edge. No change of table is needed for that here. Tokens without a user (client credentials)
-- no longer enter the index on access_tokens.user_id, and the tokens' expiry indexes go: no query
-- used them (the sweep looks for expired OR revoked rows, which one index on expires_at cannot
-- answer), and every token paid for their upkeep.
DROP INDEX access_tokens_expiry;
DROP INDEX refresh_tokens_expiry;
DROP INDEX access_tokens_user;
CREATE INDEX access_tokens_user ON access_tokens (user_id) WHERE user_id IS NOT NULL;
