// cross_channel_journey: one customer across channels over time — each source record with its
// channel, first and last activity (orders and sessions) and how much happened there.
// param: customer_id string — Customer.customer_id
MATCH (c:Customer {customer_id: $customer_id})<-[:RESOLVED_TO]-(r:SourceRecord)
WITH r,
     CASE WHEN r.first_order_at IS NULL THEN r.first_session_at
          WHEN r.first_session_at IS NULL OR r.first_order_at < r.first_session_at THEN r.first_order_at
          ELSE r.first_session_at END AS first_seen,
     CASE WHEN r.last_order_at IS NULL THEN r.last_session_at
          WHEN r.last_session_at IS NULL OR r.last_order_at > r.last_session_at THEN r.last_order_at
          ELSE r.last_session_at END AS last_seen
RETURN r.source AS channel, r.record_id AS record_id, first_seen, last_seen,
       coalesce(r.orders, 0) AS orders, coalesce(r.sessions, 0) AS sessions
ORDER BY first_seen IS NULL, first_seen, channel;
