SELECT (SELECT max(transaction_id) FROM events) AS newest_stored,
       pg_snapshot_xmax(pg_current_snapshot()) AS next_on_this_server;
