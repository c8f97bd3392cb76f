-- 10-schema.sql: the example's table, created in Postgres on the first start
-- (before the bridge roles, which get privileges on every table of public).
CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    author text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO messages (author, body) VALUES ('server', 'hello from Postgres');
