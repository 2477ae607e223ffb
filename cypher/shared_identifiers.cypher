// shared_identifiers: e-mail addresses and phone numbers held by several customers — a
// household landline, or one phone behind many synthetic identities.
// param: min_customers int = 3 — the fewest customers sharing the identifier to list it
// param: limit int = 25 — rows returned
MATCH (i)<-[:HAS_EMAIL|HAS_PHONE]-(c:Customer)
WHERE i:Email OR i:Phone
WITH i, collect(DISTINCT c.customer_id) AS customer_ids, collect(DISTINCT c.last_name) AS surnames
WHERE size(customer_ids) >= $min_customers
RETURN CASE WHEN i:Email THEN 'email' ELSE 'phone' END AS kind, coalesce(i.address, i.e164, i.number) AS identifier,
       size(customer_ids) AS customers, size(surnames) AS distinct_surnames, customer_ids
ORDER BY customers DESC, identifier
LIMIT $limit;
