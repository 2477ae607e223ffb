// why_merged: the pair evidence that built one customer — every scored pair of its source
// records with the total match weight, probability and the per-field weights.
// param: customer_id string — Customer.customer_id
MATCH (c:Customer {customer_id: $customer_id})<-[:RESOLVED_TO]-(a:SourceRecord)-[m:MATCHED]->(b:SourceRecord)
RETURN a.record_key AS record_a, b.record_key AS record_b, round(m.weight, 2) AS match_weight,
       round(m.probability, 4) AS probability,
       m.weight_first_name AS first_name, m.weight_last_name AS last_name, m.weight_dob AS dob,
       m.weight_email AS email, m.weight_phone AS phone, m.weight_address AS address,
       m.weight_identifier AS identifier
ORDER BY match_weight DESC;
