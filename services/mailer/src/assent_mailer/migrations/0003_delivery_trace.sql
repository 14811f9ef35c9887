-- The trace of the event that caused a delivery, so the SMTP or webhook call joins that trace.
ALTER TABLE deliveries ADD COLUMN traceparent text;
