"""Helpers shared by the test suites: live servers, clients, browser set-up."""
