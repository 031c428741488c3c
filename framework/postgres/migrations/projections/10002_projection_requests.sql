-- Requests an operator files for a projection's manager from outside the
-- service that runs it (`composable dead-letters retry`, `composable
-- checkpoint reset`): the operations tool cannot apply events itself (it
-- does not know the projection's types), so it leaves a row here, and the
-- manager takes it (DELETE ... RETURNING) and carries it out.
--
-- kind 'rebuild' carries the nil uuid as its event_id, so filing the same
-- request twice is one row.
CREATE TABLE projection_requests (
    projection   text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('rebuild', 'retry')),
    event_id     uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, kind, event_id)
);
