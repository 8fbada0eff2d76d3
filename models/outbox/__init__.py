"""What callers hear about: the item-event outbox (written in the transaction of each change) and
the webhook endpoints and deliveries fed from it. The sender itself is `flows.webhooks`."""
