"""``servelog setup``: index templates, ISM retention and Dashboards saved objects, idempotently."""
