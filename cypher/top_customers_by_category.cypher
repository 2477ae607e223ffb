// top_customers_by_category: the customers who spent most in one product category.
// param: category string — Category.name, e.g. "electronics" (see: MATCH (c:Category) RETURN c.name)
// param: limit int = 10 — rows returned
MATCH (:Category {name: $category})<-[:IN_CATEGORY]-(p:Product)<-[b:PURCHASED]-(c:Customer)
WITH c, sum(b.amount) AS spend, sum(b.orders) AS orders, count(DISTINCT p) AS products
RETURN c.customer_id AS customer_id, c.first_name AS first_name, c.last_name AS last_name,
       round(spend, 2) AS spend, orders, products
ORDER BY spend DESC, customer_id
LIMIT $limit;
