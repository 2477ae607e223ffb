// households: street addresses shared by several customers (families, flatmates — or a drop
// address), largest first.
// param: min_customers int = 2 — the fewest customers at one address to list it
// param: limit int = 25 — rows returned
MATCH (a:Address)<-[:HAS_ADDRESS]-(c:Customer)
WITH a, collect(DISTINCT c) AS members
WHERE size(members) >= $min_customers
RETURN a.address_key AS address_key, a.street AS street, a.postcode AS postcode, a.city AS city,
       size(members) AS customers,
       [m IN members | m.customer_id] AS customer_ids,
       [m IN members | m.first_name + ' ' + m.last_name] AS names
ORDER BY customers DESC, address_key
LIMIT $limit;
