// top_risk_customers: customers with the highest fraud-risk score and the reasons behind it.
// Empty until the risk-scoring stage has set Customer.risk_score and Customer.risk_reasons.
// param: limit int = 20 — rows returned
MATCH (c:Customer)
WHERE c.risk_score IS NOT NULL
RETURN c.customer_id AS customer_id, c.first_name AS first_name, c.last_name AS last_name,
       c.risk_score AS risk_score, c.risk_band AS risk_band, c.risk_reasons AS risk_reasons
ORDER BY c.risk_rank, risk_score DESC, customer_id
LIMIT $limit;
