// customer_360: everything known about one customer — golden attributes, every source record
// that resolved to it, its identifiers, purchases (by spend) and devices.
// param: customer_id string — Customer.customer_id (from entities.parquet or a search by name)
MATCH (c:Customer {customer_id: $customer_id})
OPTIONAL MATCH (r:SourceRecord)-[res:RESOLVED_TO]->(c)
WITH c, collect(r {.record_key, .source, .record_id, .first_name, .last_name, .date_of_birth, .email, .phone,
                   match_probability: res.match_probability}) AS records
OPTIONAL MATCH (c)-[:HAS_EMAIL|HAS_PHONE|HAS_ADDRESS]->(i)
WITH c, records, collect(DISTINCT coalesce(i.address, i.number, i.address_key)) AS identifiers
OPTIONAL MATCH (c)-[p:PURCHASED]->(product:Product)
WITH c, records, identifiers, p, product ORDER BY p.amount DESC
WITH c, records, identifiers,
     collect(CASE WHEN product IS NULL THEN NULL
             ELSE {product: product.name, category: product.category, orders: p.orders, amount: p.amount} END) AS purchases
OPTIONAL MATCH (c)-[u:USED_DEVICE]->(d:Device)
RETURN c.customer_id AS customer_id, c.first_name AS first_name, c.last_name AS last_name,
       c.date_of_birth AS date_of_birth, c.email AS email, c.phone AS phone, c.postcode AS postcode,
       c.sources AS sources, records, identifiers, purchases,
       collect(CASE WHEN d IS NULL THEN NULL ELSE {device: d.device_id, type: d.device_type, sessions: u.sessions} END) AS devices;
