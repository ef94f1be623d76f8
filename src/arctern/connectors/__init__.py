"""Storage backends behind one async protocol (``base.Connector``)."""
