"""The panel's areas, one blueprint each (see web/__init__.py)."""
