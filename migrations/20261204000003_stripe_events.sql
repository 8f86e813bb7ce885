-- Stripe webhook events: each applied once. The id is recorded in the same
-- transaction as the transition it causes (security.md, "Stripe webhooks").
CREATE TABLE stripe_event (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    contest_id  uuid REFERENCES contest (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
