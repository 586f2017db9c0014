"""Loopback servers and simulators the tests drive with the real clients."""
