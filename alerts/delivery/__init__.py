"""Delivery: the persisted digest queue, and the transports that hand a digest over."""
