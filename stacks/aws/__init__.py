"""The AWS target: the stack's components on EC2, one module per part (README, Layout)."""
