BEGIN;
LOCK TABLE events IN EXCLUSIVE MODE;
WITH numbered AS (
    SELECT transaction_id AS old_transaction_id,
           sequence AS old_sequence,
           row_number() OVER (ORDER BY transaction_id, sequence) AS n
    FROM events
)
UPDATE events
SET transaction_id = pg_current_xact_id(),
    sequence = (SELECT max(sequence) FROM events) + numbered.n
FROM numbered
WHERE events.transaction_id = numbered.old_transaction_id
  AND events.sequence = numbered.old_sequence;
SELECT setval(pg_get_serial_sequence('events', 'sequence'), max(sequence)) FROM events;
COMMIT;
