"""Knowledge-base articles: ``kb/<slug>.md``."""
