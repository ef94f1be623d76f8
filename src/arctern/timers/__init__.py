"""Scheduled and recurring transfers: the Globus Timers API and the runs behind it."""
