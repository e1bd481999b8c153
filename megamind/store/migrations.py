"""Schema migrations, applied in order; ``PRAGMA user_version`` records how far a file is.

Never edit a released migration: append a new one.
"""

MIGRATIONS: list[str] = [
    # 1: the first release.
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE executors (
        hwid TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        token_hash TEXT NOT NULL UNIQUE,
        hardware TEXT NOT NULL DEFAULT '{}',
        cost REAL NOT NULL DEFAULT 0,
        ip TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        last_seen REAL
    );
    CREATE TABLE tasks (
        taskid TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        hwid TEXT NOT NULL REFERENCES executors(hwid),
        image TEXT NOT NULL,
        params TEXT NOT NULL,
        state INTEGER NOT NULL,
        error_msg TEXT NOT NULL DEFAULT '',
        holds_executor INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX tasks_by_account ON tasks(account_id, created_at) WHERE deleted = 0;
    CREATE INDEX tasks_by_executor ON tasks(hwid);
    -- The guard behind "one task per executor": a second live task cannot be written.
    CREATE UNIQUE INDEX one_live_task_per_executor ON tasks(hwid) WHERE holds_executor = 1;
    CREATE TABLE task_logs (
        taskid TEXT PRIMARY KEY REFERENCES tasks(taskid) ON DELETE CASCADE,
        lines TEXT NOT NULL
    );
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hwid TEXT NOT NULL,
        taskid TEXT NOT NULL,
        op TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX pending_commands ON commands(hwid, id) WHERE done = 0;
    """,
    # 2: a rate limit of its own per api-key (NULL: the server's default).
    """
    ALTER TABLE api_keys ADD COLUMN rate_limit TEXT;
    """,
    # 3: whole logs, results and input files.  Agents resend from their engine what the
    # API lacks (welcome's cursors), so the old 20-line tails are dropped, not converted.
    """
    DROP TABLE task_logs;
    CREATE TABLE log_lines (
        taskid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        ns INTEGER NOT NULL,
        text TEXT NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (taskid, seq)
    );
    CREATE INDEX log_lines_by_stream ON log_lines(taskid, stream, seq);
    CREATE TABLE log_state (
        taskid TEXT PRIMARY KEY,
        cursor TEXT NOT NULL,
        next_seq INTEGER NOT NULL,
        stdout_bytes INTEGER NOT NULL DEFAULT 0,
        stderr_bytes INTEGER NOT NULL DEFAULT 0,
        stdout_trimmed INTEGER NOT NULL DEFAULT 0,
        stderr_trimmed INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE tasks ADD COLUMN progress REAL;
    ALTER TABLE tasks ADD COLUMN inputs TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN results_size INTEGER;
    ALTER TABLE tasks ADD COLUMN results_truncated INTEGER;
    ALTER TABLE tasks ADD COLUMN results_at REAL;
    CREATE TABLE files (
        file_id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX files_by_account ON files(account_id, created_at);
    """,
]
