"""newswatch: the core floor (newswatch.core), and on top the command line, the service and the demo
(docs/architecture.md)."""
