"""The audit trail: every change Dispatch makes, and every one it refuses, with the actor, the
before and after, the outcome and the delivery that caused it."""
