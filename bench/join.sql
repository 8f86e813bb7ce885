-- One free join, committed the way the contest actor commits a batch of one
-- transition (src/store/contests.rs, persist_batch): in one transaction,
--   1. the contest row rewritten at its next version,
--   2. the new entry upserted through UNNEST (the service's statement),
--   3. one transition-log row inserted through UNNEST (the service's statement).
-- Run by `cargo run --release --bin bench` (src/bin/bench.rs) against the
-- service's own tables, foreign keys and indexes in the bench database:
--   pgbench -n -f bench/join.sql -D base=<B> -c <N> -j 2 -T <secs> <url>
-- Client k writes only contest number B+k (uuid 00000000-0000-4000-8000-<B+k,
-- 12 digits>), so versions never collide, as each contest has one actor.
-- The entrant of version v is user 00000000-0000-4000-9000-<v, 12 digits>
-- (pre-created), so (contest, user) stays unique among live entries.
-- The actor knows the version in memory; pgbench reads it back with
-- RETURNING instead (same row lock, no extra round trip).
\set contest_no :base + :client_id
BEGIN;
UPDATE contest
   SET title = title, description = description, entry_fee_cents = entry_fee_cents,
       currency = currency, capacity = capacity, locks_at = locks_at, state = state,
       version = version + 1, seats_confirmed = seats_confirmed + 1,
       seats_pending = seats_pending, next_deadline = next_deadline, updated_at = now()
 WHERE id = ('00000000-0000-4000-8000-' || lpad(:contest_no::text, 12, '0'))::uuid
RETURNING version AS v \gset
INSERT INTO entry (contest_id, id, user_id, status, amount_cents, currency,
                   hold_expires_at, payment_intent_id, last_payment_error,
                   created_at, updated_at)
SELECT * FROM UNNEST(
    ARRAY[('00000000-0000-4000-8000-' || lpad(:contest_no::text, 12, '0'))::uuid],
    ARRAY[gen_random_uuid()],
    ARRAY[('00000000-0000-4000-9000-' || lpad(:v::text, 12, '0'))::uuid],
    ARRAY['confirmed'::text], ARRAY[0::bigint], ARRAY['usd'::text],
    ARRAY[NULL::timestamptz], ARRAY[NULL::text], ARRAY[NULL::text],
    ARRAY[now()], ARRAY[now()])
ON CONFLICT (contest_id, id) DO UPDATE SET
    status = EXCLUDED.status,
    hold_expires_at = EXCLUDED.hold_expires_at,
    payment_intent_id = EXCLUDED.payment_intent_id,
    last_payment_error = EXCLUDED.last_payment_error,
    updated_at = EXCLUDED.updated_at;
INSERT INTO contest_transition (contest_id, version, kind, events, actor_user_id, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(:contest_no::text, 12, '0'))::uuid, * FROM UNNEST(
    ARRAY[:v::bigint], ARRAY['join'::text],
    ARRAY[jsonb_build_array(jsonb_build_object('type', 'entry_created', 'entry', jsonb_build_object(
        'id', gen_random_uuid(), 'user_id', ('00000000-0000-4000-9000-' || lpad(:v::text, 12, '0')),
        'status', 'confirmed', 'amount_cents', 0, 'currency', 'usd', 'hold_expires_at', NULL,
        'payment_intent_id', NULL, 'last_payment_error', NULL,
        'created_at', now(), 'updated_at', now())))],
    ARRAY[('00000000-0000-4000-9000-' || lpad(:v::text, 12, '0'))::uuid],
    ARRAY[now()]);
COMMIT;
