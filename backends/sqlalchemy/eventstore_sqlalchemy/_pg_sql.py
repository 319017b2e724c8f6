"""The hand-written SQL of the PostgreSQL store's hot paths, for one table prefix.

asyncpg prepares each statement once per connection. Appends (:mod:`._pg_append`)
lock the runs' counter rows, then insert the events and bump the counters in one
statement that also sends ``NOTIFY`` on :attr:`Statements.channel`.
"""

from __future__ import annotations

__all__ = ["Statements"]


class Statements:
    """Every statement of the hot paths, named with the store's table prefix."""

    def __init__(self, prefix: str) -> None:
        events, runs = f"{prefix}events", f"{prefix}runs"
        #: The NOTIFY channel of appends, imports and deletes: its payload is the run id.
        self.channel = f"{prefix}events"

        # -- appends (group commit) ------------------------------------------------
        # The no-op DO UPDATE locks the row whether or not it existed before; the
        # runs are locked in run-id order.
        self.lock = (
            f"INSERT INTO {runs} AS t (run_id, last_seq) "
            "SELECT u, 0 FROM unnest($1::varchar[]) AS u ORDER BY u "
            "ON CONFLICT (run_id) DO UPDATE SET last_seq = t.last_seq "
            "RETURNING t.run_id, t.last_seq, t.session_id"
        )
        self.look_up = (
            f"SELECT e.run_id, e.seq, e.event_id, e.envelope FROM {events} AS e "
            "JOIN unnest($1::varchar[], $2::varchar[]) AS k(run_id, event_id) "
            "ON e.run_id = k.run_id AND e.event_id = k.event_id"
        )
        # Every event of a group has the group's commit time: $9 and $12.
        self.write = (
            f"WITH ins AS (INSERT INTO {events} "
            "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us, emitted_ns) "
            "SELECT *, $9::bigint, $12::smallint FROM unnest($1::varchar[], $2::bigint[], "
            "$3::varchar[], $4::varchar[], $5::text[], $11::varchar[])) "
            f"UPDATE {runs} AS t SET last_seq = u.last_seq, session_id = u.session_id "
            "FROM unnest($6::varchar[], $7::bigint[], $8::varchar[]) "
            "AS u(run_id, last_seq, session_id) WHERE t.run_id = u.run_id "
            "RETURNING pg_notify($10, t.run_id)"
        )
        # The same for a group of one run (every sequential append, and imports):
        # simpler plans that cost the server less than the unnest joins above.
        self.lock_one = (
            f"INSERT INTO {runs} AS t (run_id, last_seq) VALUES ($1, 0) "
            "ON CONFLICT (run_id) DO UPDATE SET last_seq = t.last_seq "
            "RETURNING t.run_id, t.last_seq, t.session_id"
        )
        self.write_one = (
            f"WITH ins AS (INSERT INTO {events} "
            "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us, emitted_ns) "
            "SELECT $1, *, $8::bigint, $11::smallint FROM unnest($2::bigint[], $3::varchar[], "
            "$4::varchar[], $5::text[], $10::varchar[])) "
            f"UPDATE {runs} SET last_seq = $6, session_id = $7 WHERE run_id = $1 "
            "RETURNING pg_notify($9, $1)"
        )

        # -- imports, reads, deletes -------------------------------------------------
        # Copied envelopes keep their own times, so the time columns are arrays here.
        self.import_rows = (
            f"WITH ins AS (INSERT INTO {events} "
            "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us, emitted_ns) "
            "SELECT $1, * FROM unnest($2::bigint[], $3::varchar[], $4::varchar[], "
            "$5::text[], $6::varchar[], $7::bigint[], $11::smallint[])) "
            f"UPDATE {runs} SET last_seq = $8, session_id = $9 WHERE run_id = $1 "
            "RETURNING pg_notify($10, $1)"
        )
        self.list_after = (
            f"SELECT seq, envelope FROM {events} WHERE run_id = $1 AND seq > $2 "
            "ORDER BY seq LIMIT $3"
        )
        self.last_seq = f"SELECT last_seq FROM {runs} WHERE run_id = $1"
        # The live subscribers' poller: many runs' counters in one statement.
        self.last_seqs = f"SELECT run_id, last_seq FROM {runs} WHERE run_id = ANY($1::varchar[])"
        # Three statements, not one: the counter row is locked first (waiting for
        # an append in flight), and only then are the events deleted, by a new
        # statement whose snapshot includes that append's event. A single statement
        # would read its snapshot before the wait and leave that event behind.
        self.delete_lock = f"SELECT 1 FROM {runs} WHERE run_id = $1 FOR UPDATE"
        self.delete_events = (
            f"WITH e AS (DELETE FROM {events} WHERE run_id = $1 RETURNING 1) SELECT count(*) FROM e"
        )
        # Subscribers in other processes hear of the delete at once.
        self.delete_run = f"DELETE FROM {runs} WHERE run_id = $1 RETURNING pg_notify($2, run_id)"
        # Lost acknowledgements: a transaction's id, and later whether it committed.
        self.xid = "SELECT txid_current()"
        self.xid_status = "SELECT txid_status($1)"
