-- The user's language as identity announced it at sign-up, for the mails' templates (null: English).
ALTER TABLE contacts ADD COLUMN locale text;
