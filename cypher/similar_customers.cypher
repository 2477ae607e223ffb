// similar_customers: the customers whose embeddings (what they buy, the devices they use)
// are nearest to one customer's, by cosine similarity in the vector index. Empty until
// `identigraph embed … --to-neo4j` has written Customer.embedding.
// param: customer_id string — Customer.customer_id
// param: k int = 10 — how many neighbours
MATCH (c:Customer {customer_id: $customer_id})
WHERE c.embedding IS NOT NULL
CALL db.index.vector.queryNodes('customer_embedding', $k + 1, c.embedding) YIELD node, score
WITH c, node, score
WHERE node <> c
RETURN node.customer_id AS customer_id, node.first_name AS first_name, node.last_name AS last_name,
       round(score, 4) AS similarity
ORDER BY similarity DESC, customer_id
LIMIT $k;
