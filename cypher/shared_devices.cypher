// shared_devices: devices used by several customers — fraud-ring candidates. A household
// tablet is shared too: many customers with few surnames is a family, many surnames a ring.
// param: min_customers int = 3 — the fewest customers on one device to list it
// param: limit int = 25 — rows returned
MATCH (d:Device)<-[u:USED_DEVICE]-(c:Customer)
WITH d, collect(DISTINCT c.customer_id) AS customer_ids, collect(DISTINCT c.last_name) AS surnames,
     sum(u.sessions) AS sessions
WHERE size(customer_ids) >= $min_customers
RETURN d.device_id AS device_id, d.device_type AS device_type, size(customer_ids) AS customers,
       size(surnames) AS distinct_surnames, sessions, customer_ids
ORDER BY customers DESC, distinct_surnames DESC, device_id
LIMIT $limit;
