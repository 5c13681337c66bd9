"""Drives a running ledger through a client generated from its OpenAPI
document (openapi-python-client), as a user of the document would.

Fails when the generated client lacks an operation of the document (a
repeated operationId makes the generator drop all but one), when a query
route (every GET under /v1/ but the live feed) does not answer 200 through
the client, or when the client cannot parse the answer into its model.

Usage (scripts/fuzz.sh runs it):
  python openapi_client_check.py DOCUMENT CLIENT_DIR BASE_URL ADMIN_TOKEN CUSTOMER_TOKEN WEBHOOK_SECRET
"""

import datetime
import hashlib
import hmac
import importlib
import inspect
import json
import sys
import time
import uuid

import httpx

PACKAGE = "marketplace_ledger_client"
# Server-sent events: a stream that does not end; the fuzz run skips it too.
NOT_CALLED = {("get", "/v1/events/stream"), ("get", "/v1/orders/stream")}


def fail(message):
    print(f"openapi client: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def module_name(operation_id):
    return "".join(c if c.isalnum() else "_" for c in operation_id).lower()


def operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield method, path, op


def main():
    document_path, client_dir, base_url, token, customer_token, webhook_secret, platform_token = sys.argv[1:8]
    with open(document_path) as f:
        document = json.load(f)
    sys.path.insert(0, client_dir)
    client_module = importlib.import_module(PACKAGE)
    models = importlib.import_module(f"{PACKAGE}.models")

    # Every operation of the document has its function in the client.
    functions = {}
    for method, path, op in operations(document):
        tag = op["tags"][0]
        name = f"{PACKAGE}.api.{module_name(tag)}.{module_name(op['operationId'])}"
        try:
            functions[(method, path)] = importlib.import_module(name)
        except ImportError:
            fail(f"the generated client has no {name} for {method.upper()} {path}")

    client = client_module.AuthenticatedClient(base_url=base_url, token=token, timeout=30.0)

    customer = client_module.AuthenticatedClient(base_url=base_url, token=customer_token, timeout=30.0)
    # The platform admin manages tenants, and may do nothing else.
    platform = client_module.AuthenticatedClient(base_url=base_url, token=platform_token, timeout=30.0)

    def call(method, path, as_client=None, **kwargs):
        response = functions[(method, path)].sync_detailed(client=as_client or client, **kwargs)
        if response.status_code // 100 != 2:
            fail(f"{method.upper()} {path}: {response.status_code} {response.content[:500]!r}")
        if response.parsed is None:
            fail(f"{method.upper()} {path}: the client could not parse {response.content[:500]!r}")
        return response.parsed

    # A marketplace with one paid rental order, made through the client.
    vendor = call("post", "/v1/vendors", body=models.RegisterVendor.from_dict({"name": "Kayaks"}))
    listing = call(
        "post",
        "/v1/listings",
        body=models.CreateListing.from_dict(
            {
                "title": "Kayak",
                "description": "Two-seat kayak",
                "category": "boats",
                "kind": "rental",
                "pricing_unit": "day",
                "price_per_unit": "45.00",
                "deposit": "100.00",
                "units": 3,
                "vendor_id": str(vendor.vendor_id),
            }
        ),
    )
    call("post", "/v1/listings/{listing_id}/publish", listing_id=listing.listing_id)
    start = datetime.datetime(2030, 6, 1, 9, tzinfo=datetime.timezone.utc)
    end = datetime.datetime(2030, 6, 3, 21, tzinfo=datetime.timezone.utc)
    order = call(
        "post",
        "/v1/orders",
        as_client=customer,
        idempotency_key=str(uuid.uuid4()),
        body=models.PlaceOrder.from_dict(
            {
                "items": [
                    {
                        "listing_id": str(listing.listing_id),
                        "quantity": 2,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                    }
                ]
            }
        ),
    )
    # The webhook's signature covers the exact bytes: sent raw.
    event = json.dumps(
        {
            "id": f"evt_{order.order_id}",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": f"pi_{order.order_id}",
                    "amount": int(order.total.replace(".", "")),
                    "currency": "usd",
                    "metadata": {"order_id": str(order.order_id)},
                }
            },
        }
    ).encode()
    timestamp = int(time.time())
    mac = hmac.new(webhook_secret.encode(), f"{timestamp}.".encode() + event, hashlib.sha256)
    paid = httpx.post(
        f"{base_url}/v1/webhooks/payments",
        content=event,
        headers={"content-type": "application/json", "stripe-signature": f"t={timestamp},v1={mac.hexdigest()}"},
    )
    if paid.status_code != 200:
        fail(f"the payment webhook: {paid.status_code} {paid.text}")
    client = client.with_headers({"Ledger-Min-Position": str(paid.json()["position"])})

    # A seal over the first events (the server seals every 200 ms), so that
    # the inclusion proof of position 1 exists.
    for _ in range(100):
        seals = httpx.get(f"{base_url}/v1/audit/seals", headers={"authorization": f"Bearer {token}"})
        if seals.status_code == 200 and seals.json()["seals"]:
            break
        time.sleep(0.2)
    else:
        fail(f"no seal was made: {seals.status_code} {seals.text[:500]}")

    # An outgoing webhook endpoint, whose delivery log is a query route.
    endpoint = httpx.post(
        f"{base_url}/v1/webhook-endpoints",
        json={"url": "https://receiver.example/ledger", "event_types": ["OrderPlaced"]},
        headers={"authorization": f"Bearer {token}"},
    )
    if endpoint.status_code != 201:
        fail(f"POST /v1/webhook-endpoints: {endpoint.status_code} {endpoint.text[:500]}")

    # The paid order's invoice, issued by the policies shortly after.
    invoice_id = None
    for _ in range(100):
        invoices = httpx.get(
            f"{base_url}/v1/orders/{order.order_id}/invoices",
            headers={"authorization": f"Bearer {token}"},
        )
        if invoices.status_code == 200 and invoices.json():
            invoice_id = invoices.json()[0]["invoice_id"]
            break
        time.sleep(0.1)
    if invoice_id is None:
        fail(f"the paid order got no invoice: {invoices.status_code} {invoices.text[:500]}")

    # A plan (admin) and a customer's subscription to it, for the plan and
    # subscription queries; read once the read models reached them.
    plan = call(
        "post",
        "/v1/plans",
        body=models.CreatePlan.from_dict({"name": "Monthly pass", "price": "89.00", "interval": "month"}),
    )
    subscription = call(
        "post",
        "/v1/subscriptions",
        as_client=customer,
        body=models.Subscribe.from_dict({"plan_id": str(plan.plan_id)}),
    )
    client = client.with_headers({"Ledger-Min-Position": str(subscription.position)})

    # A tenant, for the platform admin's query.
    tenant = call(
        "post",
        "/v1/tenants",
        as_client=platform,
        body=models.CreateTenant.from_dict(
            {"slug": "fuzz-garage", "name": "Fuzz garage", "currency": "EUR", "tax_rate": "0.2"}
        ),
    )

    # Every query route, through the client, with the ids made above.
    values = {
        "plan_id": plan.plan_id,
        "subscription_id": subscription.subscription_id,
        "invoice_id": invoice_id,
        "position": 1,
        "endpoint_id": endpoint.json()["endpoint_id"],
        "listing_id": listing.listing_id,
        "order_id": order.order_id,
        "vendor_id": vendor.vendor_id,
        "aggregate_type": "Order",
        "aggregate_id": str(order.order_id),
        "slug": tenant.slug,
        "from_": start - datetime.timedelta(days=1),
        "to": end + datetime.timedelta(days=1),
    }
    called = []
    for method, path, _ in operations(document):
        if method != "get" or not path.startswith("/v1/") or (method, path) in NOT_CALLED:
            continue
        function = functions[(method, path)].sync_detailed
        arguments = {}
        for name, parameter in inspect.signature(function).parameters.items():
            # Required parameters only: optional ones keep their defaults.
            if name == "client" or parameter.default is not inspect.Parameter.empty:
                continue
            if name not in values:
                fail(f"GET {path}: no value for its required parameter {name}")
            arguments[name] = values[name]
        as_client = platform if path.startswith("/v1/tenants") else None
        call(method, path, as_client=as_client, **arguments)
        called.append(path)
    if not called:
        fail("no query route was called")
    print(f"openapi client: {len(called)} query routes answered through the generated client", file=sys.stderr)
    for path in called:
        print(f"openapi client:   GET {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
