// risky_rings: devices, phones and addresses shared by several customers, riskiest groups
// first — fraud-ring candidates with their members' scores. Empty until the risk-scoring
// stage has set Customer.risk_score (`identigraph score TABLES --to-neo4j`).
// param: min_customers int = 3 — the fewest customers sharing the identifier
// param: limit int = 20 — rows returned
MATCH (c:Customer)-[:USED_DEVICE|HAS_PHONE|HAS_ADDRESS]->(shared)
WHERE c.risk_score IS NOT NULL
WITH shared, collect(c) AS members
WHERE size(members) >= $min_customers
WITH shared, members, reduce(total = 0.0, m IN members | total + m.risk_score) / size(members) AS mean_risk
RETURN labels(shared)[0] AS kind, coalesce(shared.device_id, shared.number, shared.address_key) AS identifier,
       size(members) AS customers, round(mean_risk, 4) AS mean_risk,
       size([m IN members WHERE m.risk_band IN ['high', 'critical']]) AS high_risk,
       [m IN members | m.customer_id] AS customer_ids
ORDER BY mean_risk DESC, customers DESC, identifier
LIMIT $limit;
