"""The percentage routers: AWS Lambda handlers that move entry points from paas to ecs gradually.

- ``cloudfront``: Lambda@Edge origin-request handler choosing the origin of each request;
- ``ses_receipts``: SNS-triggered handler putting each SES notification on a side's Celery queue;
- ``switch``: the cached, exact, sticky, fail-safe percentage switch both use;
- ``route_format`` / ``route_store``: the route item in DynamoDB and its audited writes;
- ``config``: each handler's config dict, validated; ``packaging``: the Lambda zip;
- ``aws_client`` (with ``sigv4``, ``aws_credentials``, ``attribute_values``): the handlers'
  DynamoDB and SQS calls, from the standard library.

The handlers import only the standard library: boto3, most of a usual handler's cold start, is
left to the operators' ``route_store``. So the package is a small zip the Lambda Python runtime
runs as it is; nothing here may import celery, redis or click.
"""
