"""The Kubernetes target's stack (issue 16): a pool on a cluster the organization runs, in its
own namespace, sealed by NetworkPolicy, one module per part (labels.py, namespace.py,
network_policy.py, workload.py, service.py, pool.py assembling them, target.py the builder).
Every manifest is built as a plain dict, camelCase as the API server reads it, so the tests
validate exactly what is registered against the Kubernetes API's schemas."""
