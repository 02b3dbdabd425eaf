"""The application: configuration, pure domain, services (use cases) and adapters (I/O)."""
