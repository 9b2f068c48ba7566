"""Customers and what they see: the customer table and its portal tokens, the read-only portal
(board, issue page with a public timeline, their JSON twins) served from Postgres alone, its rate
limits, and the health of each customer's issues for the people who look after them."""
