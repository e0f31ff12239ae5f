"""Real Debian guests for the suite, built from Debian packages only (see debian.py)."""
