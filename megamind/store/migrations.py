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
    # 4: jobs.  A queued task has no executor yet, so tasks.hwid becomes nullable (SQLite
    # cannot relax NOT NULL in place: the table is copied).  Requirement figures are columns
    # so the queue narrows candidates in SQL; executors keep their size as columns too.
    """
    CREATE TABLE tasks_v4 (
        taskid TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        hwid TEXT REFERENCES executors(hwid),
        image TEXT NOT NULL,
        params TEXT NOT NULL,
        state INTEGER NOT NULL,
        error_msg TEXT NOT NULL DEFAULT '',
        holds_executor INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        progress REAL,
        inputs TEXT NOT NULL DEFAULT '[]',
        results_size INTEGER,
        results_truncated INTEGER,
        results_at REAL,
        pinned INTEGER NOT NULL DEFAULT 1,
        requirements TEXT NOT NULL DEFAULT '{}',
        spec TEXT NOT NULL DEFAULT '{}',
        start_payload TEXT NOT NULL DEFAULT '{}',
        priority INTEGER NOT NULL DEFAULT 50,
        queued INTEGER NOT NULL DEFAULT 0,
        queue_timeout INTEGER,
        queue_deadline REAL,
        need_gpus INTEGER NOT NULL DEFAULT 0,
        need_vram_mb INTEGER NOT NULL DEFAULT 0,
        need_cpus INTEGER NOT NULL DEFAULT 0,
        need_cpu_share REAL NOT NULL DEFAULT 0,
        need_ram_mb INTEGER NOT NULL DEFAULT 0,
        max_cost REAL,
        min_rating REAL,
        cancelled INTEGER NOT NULL DEFAULT 0,
        price REAL,
        placed_at REAL,
        started_at REAL,
        finished_at REAL,
        exit_code INTEGER,
        billed_seconds REAL NOT NULL DEFAULT 0,
        ports TEXT NOT NULL DEFAULT '[]'
    );
    INSERT INTO tasks_v4 (taskid, account_id, hwid, image, params, state, error_msg, holds_executor, deleted,
                          created_at, updated_at, progress, inputs, results_size, results_truncated, results_at,
                          price, placed_at)
        SELECT t.taskid, t.account_id, t.hwid, t.image, t.params, t.state, t.error_msg, t.holds_executor,
               t.deleted, t.created_at, t.updated_at, t.progress, t.inputs, t.results_size,
               t.results_truncated, t.results_at, e.cost, t.created_at
        FROM tasks t JOIN executors e ON e.hwid = t.hwid;
    DROP TABLE tasks;
    ALTER TABLE tasks_v4 RENAME TO tasks;
    CREATE INDEX tasks_by_account ON tasks(account_id, created_at) WHERE deleted = 0;
    CREATE INDEX tasks_by_executor ON tasks(hwid);
    CREATE UNIQUE INDEX one_live_task_per_executor ON tasks(hwid) WHERE holds_executor = 1;
    -- The queue in the order it is served: higher priority first, then oldest.
    CREATE INDEX queue_order ON tasks(priority DESC, created_at, taskid) WHERE queued = 1;
    CREATE INDEX queue_deadlines ON tasks(queue_deadline) WHERE queued = 1;
    ALTER TABLE executors ADD COLUMN online INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN gpu_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN min_vram_mb INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN cpu_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN cpu_share REAL NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN ram_mb INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN rating REAL NOT NULL DEFAULT 0;
    ALTER TABLE executors ADD COLUMN gpu_names TEXT NOT NULL DEFAULT '';
    ALTER TABLE executors ADD COLUMN publish_address TEXT NOT NULL DEFAULT '';
    CREATE INDEX executors_by_cost ON executors(cost, rating DESC, hwid);
    """,
    # 5: money and history.  Every charge is a row of the append-only ledger, written in
    # the same transaction as the task's meter moves past it; a task's totals and an
    # account's balance are kept beside it, in that same transaction.  Money is integer
    # micro-units.  Deleted tasks stay (deleted = 1) for history: they are read newest first.
    """
    ALTER TABLE tasks ADD COLUMN run_key REAL;
    ALTER TABLE tasks ADD COLUMN run_started REAL;
    ALTER TABLE tasks ADD COLUMN meter_from REAL;
    ALTER TABLE tasks ADD COLUMN unseen TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN run_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN run_micro INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN meter_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN billed_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN cost_micro INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN deleted_at REAL;
    UPDATE tasks SET billed_ms = CAST(ROUND(billed_seconds * 1000) AS INTEGER);
    CREATE INDEX history_order ON tasks(account_id, created_at DESC, taskid DESC);
    CREATE INDEX metered ON tasks(hwid) WHERE meter_from IS NOT NULL;
    -- A task's pending command, which every detail shows.
    CREATE INDEX pending_by_task ON commands(taskid, id) WHERE done = 0;
    CREATE INDEX runs_of_image ON tasks(image, finished_at) WHERE started_at IS NOT NULL AND finished_at IS NOT NULL;
    ALTER TABLE executors ADD COLUMN seen_at REAL;
    ALTER TABLE accounts ADD COLUMN balance_micro INTEGER;
    ALTER TABLE accounts ADD COLUMN spend_limit_micro INTEGER;
    CREATE TABLE charges (
        id INTEGER PRIMARY KEY,
        taskid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        hwid TEXT NOT NULL,
        owner_id INTEGER NOT NULL,
        image TEXT NOT NULL,
        period_start REAL NOT NULL,
        period_end REAL NOT NULL,
        ms INTEGER NOT NULL,
        price REAL NOT NULL,
        micro INTEGER NOT NULL,
        fee_micro INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (taskid, seq)
    );
    CREATE INDEX charges_by_account ON charges(account_id, created_at);
    CREATE INDEX charges_by_owner ON charges(owner_id, created_at);
    CREATE TABLE credits (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        micro INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    """,
    # 6: trust.  A repository of the registry belongs to the account that first pushed it;
    # others may pull it only once it is public.  An executor can be removed: its token
    # stops working at once, and its record stays for its tasks' history.
    """
    CREATE TABLE repositories (
        name TEXT PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES accounts(id),
        public INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX repositories_by_owner ON repositories(owner_id, name);
    ALTER TABLE executors ADD COLUMN removed_at REAL;
    """,
    # 7: dialects.  A task carries labels (a dialect's own fields: a JobProxy user, an
    # Onepanel project); an admin account may stop the server through Flux's service call.
    """
    ALTER TABLE tasks ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
    """,
]
