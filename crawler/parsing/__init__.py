"""Reading what a polled source returns: RSS/Atom feeds, sitemaps, and the XML helpers they share."""
