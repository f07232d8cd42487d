"""The core floor: models, errors, logs, text normalization, times, config and the store; imports nothing above it."""
