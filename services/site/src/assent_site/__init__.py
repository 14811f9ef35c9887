"""The Site: main page, privacy center and admin console of the Assent demo site."""
