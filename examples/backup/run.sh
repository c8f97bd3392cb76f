#!/bin/bash
# run.sh: backup (push only).  Asserts that the device's inserts, updates
# and deletes reach Postgres, exactly, and that rows written on the server
# never come down to the device.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
ex_setup backup
conf=$here/pgsqlite-bridge.conf
export PGSQLITE_BRIDGE_SQLITE=$ex_work/till.db
db=$PGSQLITE_BRIDGE_SQLITE

pg "CREATE TABLE sales (id uuid PRIMARY KEY, till int NOT NULL, amount numeric(10,2) NOT NULL,
	sold_at timestamptz NOT NULL DEFAULT now())"
ex_grant "SELECT, INSERT, UPDATE, DELETE" sales
bridge "$conf" check >/dev/null || { bridge "$conf" check; fail "check"; }
ex_start till "$conf"
wait_for "init created the table on the device" 1 30 \
	sq "$db" "SELECT count(*) FROM sqlite_master WHERE name = 'sales'"

say "a busy minute on the till: 200 sales, one refund, one correction"
sq "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
	INSERT INTO sales (id, till, amount) SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2)))
		|| '-4' || substr(lower(hex(randomblob(2))), 2) || '-a' || substr(lower(hex(randomblob(2))), 2)
		|| '-' || lower(hex(randomblob(6))), 12, (i % 50) || '.' || (i % 10) || '9' FROM n"
sq "$db" "DELETE FROM sales WHERE rowid = (SELECT min(rowid) FROM sales)"
sq "$db" "UPDATE sales SET amount = '0.01' WHERE rowid = (SELECT max(rowid) FROM sales)"
wait_for "Postgres holds the device's 199 sales" 199 30 pg "SELECT count(*) FROM sales"
wait_for "the same rows, value for value (numeric exact)" \
	"$(sq "$db" "SELECT group_concat(id || ':' || amount, ',') FROM (SELECT * FROM sales ORDER BY id)")" 10 \
	pg "SELECT string_agg(id || ':' || amount, ',' ORDER BY id::text COLLATE \"C\") FROM sales"

say "the server side writes too (a sale entered at head office)"
pg "INSERT INTO sales (id, till, amount) VALUES ('$(uuid)', 99, 1000.00)"
stays "push only: the head-office sale never reaches the device" 0 3 \
	sq "$db" "SELECT count(*) FROM sales WHERE till = 99"
wait_for "the device has nothing left to push" 0 10 sq "$db" "SELECT count(*) FROM _pgsqlite_changes"
ex_stop till
