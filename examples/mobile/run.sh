#!/bin/bash
# run.sh: the mobile-style client (manual sync).  Asserts that nothing
# moves until the app asks, that `sync` and SIGUSR1 move everything both
# ways, and that the skipped attachments table stays on the server.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
ex_setup mobile
conf=$here/pgsqlite-bridge.conf
export PGSQLITE_BRIDGE_SQLITE=$ex_work/phone.db
db=$PGSQLITE_BRIDGE_SQLITE

pg "CREATE TABLE notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE contacts (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE attachments (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), note_id uuid,
	content bytea NOT NULL);
    INSERT INTO notes (title) VALUES ('shopping list'), ('call the plumber');
    INSERT INTO contacts (name) VALUES ('Ada'), ('Grace');
    INSERT INTO attachments (content) SELECT decode(repeat('ff', 100000), 'hex') FROM generate_series(1, 3)"
ex_grant "SELECT, INSERT, UPDATE, DELETE" notes contacts attachments

bridge "$conf" check >/dev/null || { bridge "$conf" check; fail "check"; }
ok "check: the role passes"
bridge "$conf" init >/dev/null 2>"$ex_work/init.err"
wait_for "init copied the notes" 2 1 sq "$db" "SELECT count(*) FROM notes"
wait_for "init copied the contacts" 2 1 sq "$db" "SELECT count(*) FROM contacts"
# `skip = true` today stops the table's remote changes after init, but
# init still copies it: issue 7 makes skip leave it out altogether.
wait_for "init copied the attachments (skip does not act on init yet)" 3 1 sq "$db" "SELECT count(*) FROM attachments"

say "offline on the phone: a note written locally, one written on the server"
sq "$db" "INSERT INTO notes (id, title, updated_at) VALUES ('$(uuid)', 'written on the phone', '2030-01-01 00:00:00+00')"
pg "INSERT INTO notes (title) VALUES ('written on the server'); INSERT INTO attachments (content) VALUES ('\\x00')"
wait_for "the local note waits in the change log" 1 1 sq "$db" "SELECT count(*) FROM _pgsqlite_changes"
stays "manual mode: the server has not got the phone's note" 0 1 \
	pg "SELECT count(*) FROM notes WHERE title = 'written on the phone'"

say "pull-to-refresh: sync"
summary=$(bridge "$conf" sync 2>>"$ex_work/sync.err" | tail -n 1)
say "sync printed: $summary"
wait_for "the server has the phone's note" 1 1 pg "SELECT count(*) FROM notes WHERE title = 'written on the phone'"
wait_for "the phone has the server's note" 1 1 sq "$db" "SELECT count(*) FROM notes WHERE title = 'written on the server'"
wait_for "the server's new attachment did not come (skipped)" 3 1 sq "$db" "SELECT count(*) FROM attachments"
wait_for "the change log is empty" 0 1 sq "$db" "SELECT count(*) FROM _pgsqlite_changes"

say "the app keeps a bridge running in manual mode and signals it (SIGUSR1)"
ex_start phone "$conf"
sleep 1
pg "UPDATE contacts SET name = 'Ada Lovelace', updated_at = now() WHERE name = 'Ada'"
stays "nothing moves without a signal" 0 2 sq "$db" "SELECT count(*) FROM contacts WHERE name = 'Ada Lovelace'"
kill -USR1 "$pid_phone"
wait_for "SIGUSR1 synced the contact" 1 15 sq "$db" "SELECT count(*) FROM contacts WHERE name = 'Ada Lovelace'"
ex_stop phone
