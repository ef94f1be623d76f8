"""Arctern Connect: endpoints on other hosts (agents) and their collections.

Deployment side: ``endpoints`` (admin and setup), ``relay`` (file operations handed to agents
through the database), ``agent_connector`` (a Connector that relays), ``api`` (the agent API
under ``/agent/v1``). Agent side: ``agent`` (home, configuration, daemon).
"""
