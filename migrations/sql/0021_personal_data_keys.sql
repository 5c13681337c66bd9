-- Keys of personal data (issue 16, item 6; DESIGN.md invariant 11;
-- docs/PRIVACY.md). Personal fields of events (names, free-text reasons,
-- the acting person in metadata) are sealed with ChaCha20-Poly1305 under a
-- key of their data subject; the log keeps only the sealed text, which the
-- hash chain covers. Erasing a subject destroys its keys (`key` becomes
-- NULL): its data then reads "[erased]" everywhere, and the chain, which
-- never held the plaintext, still verifies.
--
-- A subject has at most one live key; data written after an erasure gets a
-- new key. A destroyed key's row stays (without the key) so that a repeated
-- erasure answers as the first one did.
CREATE TABLE personal_data_keys (
    key_id     uuid        PRIMARY KEY,
    subject    text        NOT NULL,
    key        bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL)),
    -- 32 bytes, or 60 when wrapped by the deployment's key-encryption key
    -- (nonce ‖ sealed key ‖ tag).
    CHECK (key IS NULL OR octet_length(key) IN (32, 60))
);

CREATE UNIQUE INDEX personal_data_keys_live ON personal_data_keys (subject)
    WHERE key IS NOT NULL;
CREATE INDEX personal_data_keys_subject ON personal_data_keys (subject);
