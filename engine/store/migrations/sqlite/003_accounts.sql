-- What the account log (the reserved stream ACCOUNTS in `events`, folded into its
-- snapshot like an incident's) deliberately does not hold, because it changes on every
-- sign-in and would grow the log with every guess: failed sign-ins counted per account
-- name inside the lockout window, and when each API token was last used. Neither is a
-- change to an account: the lockout itself is an event of the account log. Both rows are
-- updated in place; losing them costs an attacker's counter, never an account.
CREATE TABLE sign_in_failures (
    name TEXT NOT NULL PRIMARY KEY,
    failures INTEGER NOT NULL CHECK (failures >= 1),
    first_at TEXT NOT NULL,   -- UTC ISO 8601: the first failure of the counting window
    last_at TEXT NOT NULL);

CREATE TABLE token_uses (
    token TEXT NOT NULL PRIMARY KEY,   -- the token's id (never its secret or its hash)
    last_used_at TEXT NOT NULL);
