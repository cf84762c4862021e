-- Workers: the read model of the `worker` aggregate, plus operational state reported over NATS.

CREATE TABLE workers
(
    worker_id     uuid PRIMARY KEY,
    name          text        NOT NULL,
    registered_at timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text
);

-- Written by the api from `workers.heartbeat.<id>` messages (not events: liveness is not history).
CREATE TABLE worker_heartbeats
(
    worker_id       uuid PRIMARY KEY,
    last_seen_at    timestamptz NOT NULL,
    current_task_id uuid,
    tasks_completed bigint      NOT NULL DEFAULT 0,
    tasks_failed    bigint      NOT NULL DEFAULT 0,
    version         text
);

-- Live NATS connections of workers, recorded by the auth callout so a revocation can
-- disconnect them on whichever server they are connected to.
CREATE TABLE worker_connections
(
    server_id    text        NOT NULL,
    client_id    bigint      NOT NULL,
    worker_id    uuid        NOT NULL,
    connected_at timestamptz NOT NULL,
    PRIMARY KEY (server_id, client_id)
);
CREATE INDEX worker_connections_worker ON worker_connections (worker_id);
