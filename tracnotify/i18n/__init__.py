"""Languages: the plugin's Babel domain, its catalogs, each recipient's
language."""
