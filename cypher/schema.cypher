// Schema of the identigraph knowledge graph: one uniqueness constraint per node key (it also
// gives the index every MERGE and lookup by key uses) and indexes for common filters.
// Applied by `identigraph graph init` and before every `identigraph load`; each statement is
// IF NOT EXISTS, so running it again changes nothing.

CREATE CONSTRAINT customer_id IF NOT EXISTS FOR (n:Customer) REQUIRE n.customer_id IS UNIQUE;
CREATE CONSTRAINT source_record_key IF NOT EXISTS FOR (n:SourceRecord) REQUIRE n.record_key IS UNIQUE;
CREATE CONSTRAINT product_id IF NOT EXISTS FOR (n:Product) REQUIRE n.product_id IS UNIQUE;
CREATE CONSTRAINT category_name IF NOT EXISTS FOR (n:Category) REQUIRE n.name IS UNIQUE;
CREATE CONSTRAINT device_id IF NOT EXISTS FOR (n:Device) REQUIRE n.device_id IS UNIQUE;
CREATE CONSTRAINT email_address IF NOT EXISTS FOR (n:Email) REQUIRE n.address IS UNIQUE;
CREATE CONSTRAINT phone_number IF NOT EXISTS FOR (n:Phone) REQUIRE n.number IS UNIQUE;
CREATE CONSTRAINT address_key IF NOT EXISTS FOR (n:Address) REQUIRE n.address_key IS UNIQUE;
// Segments arrive with the segmentation stage; the constraint is ready for them.
CREATE CONSTRAINT segment_id IF NOT EXISTS FOR (n:Segment) REQUIRE n.segment_id IS UNIQUE;

// Filters analysts use: records of one channel, customers by name, by postcode, by risk.
CREATE INDEX source_record_source IF NOT EXISTS FOR (n:SourceRecord) ON (n.source, n.record_id);
CREATE INDEX customer_name IF NOT EXISTS FOR (n:Customer) ON (n.last_name, n.first_name);
CREATE INDEX customer_postcode IF NOT EXISTS FOR (n:Customer) ON (n.postcode);
CREATE INDEX customer_risk IF NOT EXISTS FOR (n:Customer) ON (n.risk_score);
