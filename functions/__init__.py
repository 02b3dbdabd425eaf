"""Trigger adapters: parse and authenticate, call one service, render the result."""
