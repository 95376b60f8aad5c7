"""The percentage routers: AWS Lambda handlers that move entry points from paas to ecs gradually.

- ``cloudfront``: Lambda@Edge origin-request handler choosing the origin of each request;
- ``ses_receipts``: SNS-triggered handler putting each SES notification on a side's Celery queue;
- ``switch``: the cached, exact, sticky, fail-safe percentage switch both use;
- ``route_format`` / ``route_store``: the route item in DynamoDB and its audited writes;
- ``config``: each handler's config dict, validated; ``packaging``: the Lambda zip.

This package imports only the standard library and boto3, so it packages into a small zip the
Lambda Python runtime can run as it is; nothing here may import celery, redis or click.
"""
