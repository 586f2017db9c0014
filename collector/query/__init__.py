"""Reading back: ``servelog status`` (the live cluster), ``servelog history`` and ``servelog logs`` (OpenSearch, or the
running components through ``pods/log``): the I/O edges of the troubleshooting commands and the notebook API."""
