"""Locust load tests for a remotegrad cluster: workloads, the Locust user, the headless
runner behind `remotegrad loadtest`, and its summary table, HTML report and chart.

Importing this package is cheap (the `remotegrad` command builds its parser from it);
`remotegrad.loadtest.locustfile` is the module that sets up gevent.
"""

__all__ = ["workloads", "options", "report"]
