#!/bin/bash
# run.sh: read-only mirror (pull only).  Asserts that inserts, updates and
# deletes in Postgres reach the mirror in realtime, that the mirror has no
# change capture (no triggers, empty change log), that a write to it is
# never pushed, and that its role has SELECT and nothing more on the tables.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
ex_setup mirror
conf=$here/pgsqlite-bridge.conf
export PGSQLITE_BRIDGE_SQLITE=$ex_work/catalogue.db
db=$PGSQLITE_BRIDGE_SQLITE

pg "CREATE TABLE products (sku text PRIMARY KEY, name text NOT NULL);
    CREATE TABLE prices (sku text PRIMARY KEY REFERENCES products, price numeric(10,2) NOT NULL,
	valid_from date NOT NULL DEFAULT current_date);
    INSERT INTO products VALUES ('A-1', 'kettle'), ('B-2', 'toaster');
    INSERT INTO prices (sku, price) VALUES ('A-1', 24.90), ('B-2', 31.00)"
# A pull-only bridge reads: SELECT on the tables, no INSERT, UPDATE, DELETE.
ex_grant "SELECT" products prices
bridge "$conf" check >/dev/null || { bridge "$conf" check; fail "check"; }
ok "check: a role with SELECT only passes for a pull-only bridge"
ex_start shop "$conf"
wait_for "init copied the catalogue" "2 2" 30 \
	sq "$db" "SELECT (SELECT count(*) FROM products) || ' ' || (SELECT count(*) FROM prices)"
wait_for "no change capture on the mirror (no triggers)" 0 5 \
	sq "$db" "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
wait_for "the bridge is streaming" 1 30 count_events shop '"event":"online"'

say "head office: a new product, a price change, a product withdrawn"
pg "BEGIN; INSERT INTO products VALUES ('C-3', 'blender'); INSERT INTO prices (sku, price) VALUES ('C-3', 59.00); COMMIT"
pg "UPDATE prices SET price = 22.50 WHERE sku = 'A-1'"
pg "DELETE FROM prices WHERE sku = 'B-2'; DELETE FROM products WHERE sku = 'B-2'"
wait_for "the mirror follows in realtime" "A-1:kettle:22.50,C-3:blender:59.00" 15 \
	sq "$db" "SELECT group_concat(sku || ':' || name || ':' || price, ',') FROM
		(SELECT * FROM products JOIN prices USING (sku) ORDER BY sku)"

say "someone writes to the mirror by mistake"
sq "$db" "UPDATE prices SET price = 0.01 WHERE sku = 'C-3'"
stays "the write stays local: Postgres keeps its price" "59.00" 2 pg "SELECT price FROM prices WHERE sku = 'C-3'"
wait_for "nothing was captured to push" 0 1 sq "$db" "SELECT count(*) FROM _pgsqlite_changes"
pg "UPDATE prices SET price = 57.00 WHERE sku = 'C-3'"
wait_for "the next change from Postgres puts the mirror right" "57.00" 15 \
	sq "$db" "SELECT price FROM prices WHERE sku = 'C-3'"
ex_stop shop
