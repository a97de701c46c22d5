"""The Pulumi program that deploys a plan, and its components.

program.py is the one entry point (`run`, used by __main__.py and `planner diff`); settings.py
reads the stack config; addressing.py, serving.py and boot.py hold what any deployment target
needs (cost tags, callers' DNS names and consumers, the vLLM command line, a node's boot time);
aws/ holds the AWS components, one module per part. A new target is a package beside aws/.
"""
