-- An erased subject keeps only this row: no consent is recorded for them again.
ALTER TABLE subjects ADD COLUMN erased_at timestamptz;
