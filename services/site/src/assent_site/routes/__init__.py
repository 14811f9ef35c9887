"""The Site's pages, one module per area: public, account, my data, cookies, admin console."""
