"""ai-infra-planner: per workload, self-host or cloud API, costed, and deployable with Pulumi."""
