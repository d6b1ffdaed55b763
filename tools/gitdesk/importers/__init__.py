"""Bridges that bring issues in from elsewhere; they keep the original author, time and id."""
