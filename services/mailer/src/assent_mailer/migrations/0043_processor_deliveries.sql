-- The console lists a processor's deliveries newest first, a page at a time.
CREATE INDEX deliveries_processor ON deliveries (recipient, created_at DESC, delivery_id DESC) WHERE channel = 'webhook';
