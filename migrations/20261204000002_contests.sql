-- Contests, their entries, the transition log, standings, the payment
-- outbox, and idempotency keys (lifecycle.md, architecture.md).
-- Contest-scoped tables are keyed by contest_id first, so they can be
-- partitioned or sharded by it.

CREATE TABLE contest (
    id               uuid PRIMARY KEY,
    organizer_id     uuid NOT NULL REFERENCES app_user (id),
    title            text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 120),
    description      text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    entry_fee_cents  bigint NOT NULL CHECK (entry_fee_cents BETWEEN 0 AND 100000),
    currency         text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    capacity         integer NOT NULL CHECK (capacity BETWEEN 1 AND 100000),
    locks_at         timestamptz NOT NULL,
    state            text NOT NULL
                     CHECK (state IN ('draft', 'open', 'locked', 'settled', 'cancelled')),
    -- One more per accepted transition; the optimistic-concurrency guard.
    version          bigint NOT NULL CHECK (version >= 1),
    seats_confirmed  integer NOT NULL DEFAULT 0,
    seats_pending    integer NOT NULL DEFAULT 0,
    -- The earliest instant a timer must fire (lock, hold expiry); NULL: none.
    next_deadline    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contest_seats_within_capacity
        CHECK (seats_confirmed >= 0 AND seats_pending >= 0
               AND seats_confirmed + seats_pending <= capacity)
);

CREATE INDEX contest_listing_idx ON contest (state, created_at DESC, id DESC);
CREATE INDEX contest_organizer_idx ON contest (organizer_id, created_at DESC);
CREATE INDEX contest_deadline_idx ON contest (next_deadline) WHERE next_deadline IS NOT NULL;

CREATE TABLE entry (
    contest_id         uuid NOT NULL REFERENCES contest (id),
    id                 uuid NOT NULL,
    user_id            uuid NOT NULL REFERENCES app_user (id),
    status             text NOT NULL
                       CHECK (status IN ('pending_payment', 'confirmed', 'expired',
                                         'withdrawn', 'refund_pending', 'refunded')),
    amount_cents       bigint NOT NULL CHECK (amount_cents >= 0),
    currency           text NOT NULL,
    hold_expires_at    timestamptz,
    payment_intent_id  text,
    last_payment_error text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (contest_id, id),
    CONSTRAINT entry_id_key UNIQUE (id)
);

-- Invariant 2: at most one live entry per (contest, user), even across
-- instances.
CREATE UNIQUE INDEX entry_one_live_per_user
    ON entry (contest_id, user_id) WHERE status IN ('pending_payment', 'confirmed');
CREATE INDEX entry_user_idx ON entry (user_id, created_at DESC);
CREATE UNIQUE INDEX entry_payment_intent_key ON entry (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;

-- One row per accepted transition (invariant 5). Insert-only for the
-- service's role.
CREATE TABLE contest_transition (
    contest_id     uuid NOT NULL REFERENCES contest (id),
    version        bigint NOT NULL,
    kind           text NOT NULL,
    events         jsonb NOT NULL,
    actor_user_id  uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contest_id, version)
);

CREATE TABLE contest_standing (
    contest_id   uuid NOT NULL REFERENCES contest (id),
    user_id      uuid NOT NULL REFERENCES app_user (id),
    rank         integer NOT NULL CHECK (rank >= 1),
    prize_cents  bigint NOT NULL CHECK (prize_cents >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contest_id, user_id)
);

-- Effects on Stripe, written in the transaction of the transition that needs
-- them and carried out by the payment worker (architecture.md).
CREATE TABLE payment_task (
    id               uuid PRIMARY KEY,
    contest_id       uuid NOT NULL REFERENCES contest (id),
    entry_id         uuid NOT NULL REFERENCES entry (id),
    kind             text NOT NULL CHECK (kind IN ('cancel_payment_intent', 'refund')),
    idempotency_key  text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'done', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_task_once UNIQUE (entry_id, kind)
);

CREATE INDEX payment_task_due_idx ON payment_task (next_attempt_at) WHERE status = 'pending';

-- `Idempotency-Key` of contest creation: the first answer is replayed.
CREATE TABLE idempotency_key (
    user_id          uuid NOT NULL REFERENCES app_user (id),
    key              text NOT NULL,
    request_hash     bytea NOT NULL,
    response_status  integer NOT NULL,
    response_body    jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
