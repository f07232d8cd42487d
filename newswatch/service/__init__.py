"""The service: the scheduler and the crawl child process it runs."""
