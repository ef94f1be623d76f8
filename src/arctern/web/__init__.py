"""Browser UI: developer console, file manager, activity."""
