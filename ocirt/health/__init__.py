"""Docker-style health checks: the image's Healthcheck (`healthcheck`), the health state
rules (`state`) and the scheduler that runs the test in the container (`monitor`)."""
