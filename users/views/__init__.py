"""Console views, one module per screen. URLs in users/urls.py import from here."""
