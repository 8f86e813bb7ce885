-- Users, their refresh-token families, and the audit trail (security.md).

CREATE TABLE app_user (
    id               uuid PRIMARY KEY,
    -- (issuer, sub) identify an Apple account; both NULL once deleted.
    apple_issuer     text,
    apple_sub        text,
    display_name     text,
    email            text,
    email_verified   boolean NOT NULL DEFAULT false,
    is_private_email boolean NOT NULL DEFAULT false,
    -- Roles beyond `user`, which everyone signed in has.
    roles            text[] NOT NULL DEFAULT '{}'
                     CHECK (roles <@ ARRAY['organizer', 'ops', 'admin']::text[]),
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_user_apple_identity_complete
        CHECK ((apple_issuer IS NULL) = (apple_sub IS NULL)),
    CONSTRAINT app_user_deleted_has_no_identity
        CHECK (deleted_at IS NULL OR apple_sub IS NULL)
);

CREATE UNIQUE INDEX app_user_apple_identity_key
    ON app_user (apple_issuer, apple_sub) WHERE apple_sub IS NOT NULL;

-- One sign-in session: its refresh tokens rotate inside the family.
CREATE TABLE refresh_family (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES app_user (id),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_family_user_idx ON refresh_family (user_id);

-- Refresh tokens are stored only as SHA-256 of the opaque value.
CREATE TABLE refresh_token (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES refresh_family (id),
    token_hash  bytea NOT NULL,
    -- Set when the token was exchanged for its successor.
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refresh_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX refresh_token_family_idx ON refresh_token (family_id);

-- Append-only: the service's role may only INSERT and SELECT (README).
CREATE TABLE audit_event (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL,
    outcome         text NOT NULL,
    reason          text,
    request_id      text,
    actor_user_id   uuid,
    subject_user_id uuid,
    client_ip       text,
    details         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_event_kind_idx ON audit_event (kind, created_at);
CREATE INDEX audit_event_subject_idx ON audit_event (subject_user_id, created_at);
