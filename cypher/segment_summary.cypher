// segment_summary: size, spend and risk of each customer segment. Empty until the
// segmentation stage has written (:Customer)-[:IN_SEGMENT]->(:Segment).
MATCH (s:Segment)<-[:IN_SEGMENT]-(c:Customer)
RETURN s.segment_id AS segment_id, s.name AS name, count(c) AS customers,
       round(avg(coalesce(c.total_spend, 0.0)), 2) AS avg_spend,
       round(avg(c.risk_score), 4) AS avg_risk
ORDER BY customers DESC;
