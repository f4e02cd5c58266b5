"""A node module with a syntax error."""

def clean(instances)
    return instances
