#!/bin/bash
# run.sh: collaboration (realtime, keep-both).  Asserts that Alice's edit
# reaches Bob in realtime, that an edit both made to the same row while
# Bob's bridge was away ends with the server's version everywhere and Bob's
# version in his conflict inbox, and that resolving it by hand reaches
# everyone.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
ex_setup collaboration
alice_conf=$ex_work/alice.conf bob_conf=$ex_work/bob.conf
# Each person's own file: the configs, with the database of the test.
sed "s|^sqlite .*|sqlite = $ex_work/alice.db|" "$here/alice.conf" > "$alice_conf"
sed "s|^sqlite .*|sqlite = $ex_work/bob.db|" "$here/bob.conf" > "$bob_conf"
alice=$ex_work/alice.db bob=$ex_work/bob.db

pg "CREATE TABLE documents (id text PRIMARY KEY, title text NOT NULL, body text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO documents (id, title, body) VALUES ('plan', 'Plan', 'first draft')"
ex_grant "SELECT, INSERT, UPDATE, DELETE" documents
bridge "$alice_conf" check >/dev/null || { bridge "$alice_conf" check; fail "check"; }

ex_start alice "$alice_conf"
ex_start bob "$bob_conf"
wait_for "Alice is online" 1 30 count_events alice '"event":"online"'
wait_for "Bob is online" 1 30 count_events bob '"event":"online"'

say "Alice renames the plan; Bob sees it in realtime"
sq "$alice" "UPDATE documents SET title = 'Plan for Q3' WHERE id = 'plan'"
wait_for "Bob has Alice's title" "Plan for Q3" 10 sq "$bob" "SELECT title FROM documents WHERE id = 'plan'"

say "Bob's laptop sleeps; both edit the plan's body"
ex_stop bob
sq "$bob" "UPDATE documents SET body = 'draft with Bob''s budget' WHERE id = 'plan'"
sq "$alice" "UPDATE documents SET body = 'draft with Alice''s timeline' WHERE id = 'plan'"
wait_for "the server has Alice's body" "draft with Alice's timeline" 10 \
	pg "SELECT body FROM documents WHERE id = 'plan'"

say "Bob's laptop wakes up: keep-both"
ex_start bob "$bob_conf"
wait_for "Bob's inbox holds the conflict" 1 30 \
	sq "$bob" "SELECT count(*) > 0 FROM _pgsqlite_conflicts WHERE resolved_at IS NULL"
wait_for "the inbox keeps Bob's version, strategy keep-both" "documents|keep-both|draft with Bob's budget" 5 \
	sq "$bob" "SELECT DISTINCT table_name || '|' || strategy || '|' || json_extract(local_row, '$.body')
		FROM _pgsqlite_conflicts WHERE resolved_at IS NULL"
wait_for "Bob's file has the server's version in place" "draft with Alice's timeline" 10 \
	sq "$bob" "SELECT body FROM documents WHERE id = 'plan'"
wait_for "the server still has Alice's version" "draft with Alice's timeline" 5 \
	pg "SELECT body FROM documents WHERE id = 'plan'"
wait_for "status counts it" "$(sq "$bob" "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolved_at IS NULL")" 10 \
	sh -c "'$ex_bin' status -c '$bob_conf' | sed -n 's/.*\"conflicts_unresolved\":\([0-9]*\).*/\1/p'"
count_conflict_events=$(count_events bob '"event":"conflict"')
[ "$count_conflict_events" -ge 1 ] || fail "no conflict event from Bob's bridge"
ok "Bob's bridge emitted a conflict event"

say "Bob resolves it in the app: both texts, merged by hand"
sq "$bob" "BEGIN;
	UPDATE documents SET body = 'draft with Alice''s timeline and Bob''s budget' WHERE id = 'plan';
	UPDATE _pgsqlite_conflicts SET resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
		resolution = 'merged by Bob' WHERE resolved_at IS NULL;
	COMMIT"
wait_for "the server has the merged text" "draft with Alice's timeline and Bob's budget" 10 \
	pg "SELECT body FROM documents WHERE id = 'plan'"
wait_for "Alice has the merged text" "draft with Alice's timeline and Bob's budget" 10 \
	sq "$alice" "SELECT body FROM documents WHERE id = 'plan'"
wait_for "Bob's inbox is empty" 0 5 sq "$bob" "SELECT count(*) FROM _pgsqlite_conflicts WHERE resolved_at IS NULL"
ex_stop alice
ex_stop bob
