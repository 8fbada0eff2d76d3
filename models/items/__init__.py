"""An item's life after it is created: claims, leases, fenced writes (complete, fail, cancel,
retry, requeue), the dispatcher's bookkeeping, fenced video writes, the admin's queue, groups."""
